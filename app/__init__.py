"""Vigil: in-session monitoring API for ketamine-infusion clinics."""
