from enum import StrEnum


class Role(StrEnum):
    NURSE = "nurse"
    CLINICIAN = "clinician"
    DASHBOARD = "dashboard"
    EHR = "ehr"
    ADMIN = "admin"


# Who may do what (API.md, "Authentication, roles, tenancy").
BEDSIDE = (Role.NURSE, Role.CLINICIAN)
CLINICIAN_ONLY = (Role.CLINICIAN,)
READ_CLINICAL = (Role.NURSE, Role.CLINICIAN, Role.EHR)
READ_SESSIONS = (Role.NURSE, Role.CLINICIAN, Role.EHR, Role.DASHBOARD)
# FHIR Observation create: the bedside, and EHRs or device gateways writing through FHIR.
FHIR_WRITE = (Role.NURSE, Role.CLINICIAN, Role.EHR)
ADMIN_ONLY = (Role.ADMIN,)
