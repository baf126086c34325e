"""The terminology of the FHIR facade: which code and unit stands for which Vigil field.

PROTOCOL.md "FHIR mapping" fixes the vital signs (LOINC, UCUM). Side effects, assessments and
alert rules have no exact standard code, so they carry a code of Vigil's own code systems, and
a SNOMED CT code as well where one means exactly the same finding.
"""

from __future__ import annotations

from dataclasses import dataclass

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_VIGIL = "https://vigil.example/fhir/CodeSystem"
OBSERVATION_KIND = f"{_VIGIL}/observation-kind"
SEVERITY = f"{_VIGIL}/severity"
ALERT_RULE = f"{_VIGIL}/alert-rule"
ALERT_ACTION = f"{_VIGIL}/alert-action"
READING_ID = "urn:vigil:reading"
OBSERVATION_ID = "urn:vigil:observation"
ALERT_ID = "urn:vigil:alert"
API_KEY_ID = "urn:vigil:api-key"
VITAL_SIGNS_PROFILE = "http://hl7.org/fhir/StructureDefinition/vitalsigns"

Coding = tuple[str, str, str]  # system, code, display


@dataclass(frozen=True)
class Part:
    """One FHIR Observation made from a reading: its id suffix, codes and unit."""

    suffix: str
    field: str  # the reading's field (blood pressure: systolic, with diastolic beside it)
    codings: tuple[Coding, ...]
    unit: str | None
    category: str
    profile: str | None


def _loinc(code: str, display: str) -> Coding:
    return (LOINC, code, display)


# A reading becomes up to five Observations (PROTOCOL.md's table), always in this order (search
# results and paging rely on it). Consciousness (ACVPU) and on_oxygen have none: no LOINC code
# covers ACVPU's "new confusion", and the mapping the clients rely on lists vital signs only.
PARTS: tuple[Part, ...] = (
    Part("hr", "heart_rate", (_loinc("8867-4", "Heart rate"),), "/min", "vital-signs", "heartrate"),
    Part("bp", "systolic", (_loinc("85354-9", "Blood pressure panel with all children optional"),),
         None, "vital-signs", "bp"),
    Part("spo2", "spo2", (_loinc("2708-6", "Oxygen saturation in Arterial blood"),
                          _loinc("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry")),
         "%", "vital-signs", "oxygensat"),
    Part("rr", "respiratory_rate", (_loinc("9279-1", "Respiratory rate"),), "/min", "vital-signs",
         "resprate"),
    Part("temp", "temperature_c", (_loinc("8310-5", "Body temperature"),), "Cel", "vital-signs",
         "bodytemp"),
)  # fmt: skip
PART_BY_SUFFIX = {part.suffix: part for part in PARTS}
# The reading as a whole: the R4 vital signs panel (profile vitalspanel), one more Observation
# whose hasMember are the reading's parts. It has no value of its own, and a panel needs a
# member, so a reading with no part (consciousness only) has none.
PANEL_SUFFIX = "panel"
PANEL_CODING = _loinc("85353-1", "Vital signs panel")
PANEL_CATEGORY = "vital-signs"
PANEL_PROFILE = "vitalspanel"
SYSTOLIC = _loinc("8480-6", "Systolic blood pressure")
DIASTOLIC = _loinc("8462-4", "Diastolic blood pressure")

# Units accepted on input per field (UCUM; annotations like {beats} do not change the unit).
INPUT_UNITS: dict[str, tuple[str, ...]] = {
    "heart_rate": ("/min", "{beats}/min", "{beat}/min"),
    "respiratory_rate": ("/min", "{breaths}/min", "{breath}/min"),
    "spo2": ("%",),
    "temperature_c": ("Cel", "[degF]"),
    "systolic": ("mm[Hg]",),
    "diastolic": ("mm[Hg]",),
}
# LOINC code on input -> reading field (blood pressure comes as the 85354-9 panel).
INPUT_CODES = {"8867-4": "heart_rate", "85354-9": "systolic", "2708-6": "spo2",
               "59408-5": "spo2", "9279-1": "respiratory_rate", "8310-5": "temperature_c"}  # fmt: skip

# Side effects and assessments: kind -> (display, SNOMED CT finding where exact, category).
KINDS: dict[str, tuple[str, str | None, str]] = {
    "nausea": ("Nausea", "422587007", "exam"),
    "vomiting": ("Vomiting", "422400008", "exam"),
    "dizziness": ("Dizziness", "404640003", "exam"),
    "headache": ("Headache", "25064002", "exam"),
    "blurred_vision": ("Blurred vision", "111516008", "exam"),
    "anxiety": ("Anxiety", "48694002", "exam"),
    "agitation": ("Agitation", None, "exam"),
    "hallucinations": ("Hallucinations", "7011001", "exam"),
    "other": ("Other side effect", None, "exam"),
    "sedation": ("Sedation, Modified Observer's Assessment of Alertness/Sedation (MOAA/S)", None,
                 "survey"),
    "dissociation": ("Dissociation", None, "survey"),
}  # fmt: skip
CADSS: Coding = (
    OBSERVATION_KIND,
    "cadss",
    "Clinician-Administered Dissociative States Scale total",
)
# Severity 0-3 of PROTOCOL.md: Vigil's code and the SNOMED CT qualifier value.
SEVERITIES: tuple[tuple[str, str, str], ...] = (
    ("none", "None", "260413007"),
    ("mild", "Mild", "255604002"),
    ("moderate", "Moderate", "6736007"),
    ("severe", "Severe", "24484000"),
)


def kind_codings(kind: str) -> tuple[Coding, ...]:
    display, snomed, _ = KINDS[kind]
    own: Coding = (OBSERVATION_KIND, kind, display)
    return (own, (SNOMED, snomed, display)) if snomed else (own,)


def rule_parts(rule: str) -> tuple[str, ...] | None:
    """The reading parts an alert rule judges (None: every part, as NEWS2 does; consciousness
    has no Observation, so its rule points at the reading's others)."""
    if rule in ("news2", "consciousness.reduced"):
        return None
    prefix = rule.split(".", 1)[0]
    return {"bp": ("bp",), "hr": ("hr",), "spo2": ("spo2",), "rr": ("rr",)}.get(prefix, ())  # fmt: skip
