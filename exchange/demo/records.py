"""Five years of a synthetic resident's record, as FHIR R4 resources."""

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from consent.model import build_consent
from exchange.demo.people import Person

SID = "https://fhir.community-exchange.example/sid"
LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
SNOMED = "http://snomed.info/sct"
ATC = "http://www.whocc.no/atc"
CVX = "http://hl7.org/fhir/sid/cvx"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
SCHEME = "https://fhir.community-exchange.example/CodeSystem/insurance-scheme"

CONDITIONS = (  # (ICD-10, Chinese, English, chance, sensitive label)
    ("I10", "原发性高血压", "Essential hypertension", 0.55, None),
    ("E11.9", "2型糖尿病", "Type 2 diabetes mellitus", 0.3, None),
    ("E78.5", "高脂血症", "Hyperlipidaemia", 0.3, None),
    ("I25.1", "冠状动脉粥样硬化性心脏病", "Atherosclerotic heart disease", 0.15, None),
    ("J44.9", "慢性阻塞性肺疾病", "Chronic obstructive pulmonary disease", 0.1, None),
    ("M17.9", "膝关节骨关节炎", "Gonarthrosis", 0.25, None),
    ("F32.9", "抑郁发作", "Depressive episode", 0.06, "PSY"),
)
MEDICATIONS = {  # condition -> (ATC, name, dose)
    "I10": ("C08CA01", "氨氯地平片 Amlodipine", "5 mg 每日一次"),
    "E11.9": ("A10BA02", "二甲双胍片 Metformin", "500 mg 每日两次"),
    "E78.5": ("C10AA05", "阿托伐他汀钙片 Atorvastatin", "20 mg 每晚一次"),
    "I25.1": ("B01AC06", "阿司匹林肠溶片 Aspirin", "100 mg 每日一次"),
    "J44.9": ("R03AK06", "沙美特罗替卡松 Salmeterol/fluticasone", "1 吸 每日两次"),
}


def _id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cc(system: str, code: str, display: str, text: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"coding": [{"system": system, "code": code, "display": display}]}
    if text:
        out["text"] = text
    return out


def _qty(value: float, unit: str, code: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


def patient(pid: str, p: Person) -> dict[str, Any]:
    return {
        "resourceType": "Patient", "id": pid, "active": True,
        "identifier": [
            {"use": "official", "system": f"{SID}/resident-id", "value": p.id_number},
            {"system": f"{SID}/medical-insurance-card", "value": p.insurance_card},
        ],
        "name": [{"use": "official", "text": p.family + p.given, "family": p.family,
                  "given": [p.given]}],
        "telecom": [{"system": "phone", "value": p.mobile, "use": "mobile"}],
        "gender": p.gender, "birthDate": p.birth.isoformat(),
        "address": [{"use": "home", "line": [p.address_line], "city": "杭州市",
                     "district": p.zone.district, "state": "浙江省", "country": "CN",
                     "text": f"浙江省杭州市{p.zone.district}{p.zone.community}{p.address_line}"}],
        "managingOrganization": {"reference": f"Organization/{p.zone.clinic}"},
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47",
                                                    "code": "zh-CN"}]}, "preferred": True}],
    }


def record(rng: random.Random, pid: str, p: Person, today: date,
           years: int = 5) -> list[dict[str, Any]]:
    """Every resource of one resident but the Patient and consents."""
    subject = {"reference": f"Patient/{pid}"}
    start = datetime(today.year - years, today.month, min(today.day, 28), 9, tzinfo=UTC)
    out: list[dict[str, Any]] = []
    conditions = [c for c in CONDITIONS if rng.random() < c[3]] or [CONDITIONS[0]]
    hypertensive = any(c[0] == "I10" for c in conditions)
    diabetic = any(c[0] == "E11.9" for c in conditions)
    for code, zh, en, _chance, _sensitive in conditions:
        onset = start - timedelta(days=rng.randint(30, 3000))
        condition: dict[str, Any] = {
            "resourceType": "Condition", "id": _id(rng),
            "clinicalStatus": _cc("http://terminology.hl7.org/CodeSystem/condition-clinical",
                                  "active", "Active"),
            "verificationStatus": _cc(
                "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "confirmed", "Confirmed"),
            "category": [_cc("http://terminology.hl7.org/CodeSystem/condition-category",
                             "problem-list-item", "Problem List Item")],
            "code": _cc(ICD10, code, en, f"{zh} {en}"),
            "subject": subject, "onsetDateTime": onset.date().isoformat(),
            "recordedDate": onset.date().isoformat(),
        }
        out.append(condition)  # sensitive ones are labelled by policy on the way in
        if code in MEDICATIONS:
            atc, name, dose = MEDICATIONS[code]
            out.append({
                "resourceType": "MedicationStatement", "id": _id(rng), "status": "active",
                "medicationCodeableConcept": _cc(ATC, atc, name.split()[-1], name),
                "subject": subject, "effectivePeriod": {"start": onset.date().isoformat()},
                "dosage": [{"text": dose}],
            })
    # Health-hut visits about every two months: blood pressure, glucose, pulse, weight.
    weight = rng.uniform(48, 78)
    moment = start
    while moment.date() < today:
        effective = _ts(moment + timedelta(minutes=rng.randint(0, 240)))
        sys_bp = rng.gauss(148 if hypertensive else 128, 10)
        dia_bp = rng.gauss(88 if hypertensive else 78, 6)
        out.append(_vital(rng, subject, effective, "85354-9", "Blood pressure panel",
                          "血压", component=[
                              (("8480-6", "Systolic blood pressure"), round(sys_bp), "mm[Hg]"),
                              (("8462-4", "Diastolic blood pressure"), round(dia_bp), "mm[Hg]")]))
        glucose = round(rng.gauss(8.2 if diabetic else 5.6, 0.9), 1)
        out.append(_vital(rng, subject, effective, "15074-8", "Glucose [Moles/volume] in Blood",
                          "血糖", value=_qty(glucose, "mmol/L", "mmol/L"),
                          category="laboratory"))
        out.append(_vital(rng, subject, effective, "8867-4", "Heart rate", "心率",
                          value=_qty(round(rng.gauss(74, 7)), "/min", "/min")))
        weight += rng.gauss(0, 0.6)
        out.append(_vital(rng, subject, effective, "29463-7", "Body weight", "体重",
                          value=_qty(round(weight, 1), "kg", "kg")))
        moment += timedelta(days=rng.randint(50, 70))
    # Yearly: functional assessment (Barthel ADL), flu vaccine; clinic visits with claims.
    barthel = rng.randint(70, 100)
    coverage_id = _id(rng)
    out.append({
        "resourceType": "Coverage", "id": coverage_id, "status": "active",
        "type": _cc(SCHEME, "URRBMI" if rng.random() < 0.6 else "UEBMI",
                    "Basic medical insurance", "基本医疗保险"),
        "subscriberId": p.insurance_card, "beneficiary": subject,
        "relationship": _cc("http://terminology.hl7.org/CodeSystem/subscriber-relationship",
                            "self", "Self"),
        "period": {"start": f"{today.year - years}-01-01"},
        "payor": [{"reference": "Organization/insurer"}],
    })
    for year in range(years):
        when = start + timedelta(days=365 * year + rng.randint(0, 300))
        barthel = max(20, min(100, barthel - rng.choice((0, 0, 5, 5, 10))))
        out.append({
            "resourceType": "Observation", "id": _id(rng), "status": "final",
            "category": [_cc(OBS_CATEGORY, "survey", "Survey")],
            "code": _cc(SNOMED, "273302005", "Barthel index", "日常生活能力评定 (Barthel ADL)"),
            "subject": subject, "effectiveDateTime": _ts(when), "valueInteger": barthel,
        })
        out.append({
            "resourceType": "Immunization", "id": _id(rng), "status": "completed",
            "vaccineCode": _cc(CVX, "141", "Influenza, seasonal, injectable", "流感疫苗"),
            "patient": subject, "occurrenceDateTime": _ts(when + timedelta(days=20)),
            "primarySource": True,
        })
        for _visit in range(rng.randint(2, 4)):
            out.extend(_visit_with_claim(rng, subject, p, coverage_id,
                                         start + timedelta(days=365 * year +
                                                           rng.randint(0, 364)),
                                         conditions))
    if rng.random() < 0.7:
        out.append({
            "resourceType": "Immunization", "id": _id(rng), "status": "completed",
            "vaccineCode": _cc(CVX, "33", "pneumococcal polysaccharide PPV23", "肺炎球菌疫苗"),
            "patient": subject, "occurrenceDateTime": _ts(start + timedelta(days=400)),
            "primarySource": True,
        })
    return out


def _vital(rng: random.Random, subject: dict[str, Any], effective: str, code: str,
           display: str, zh: str, *, value: dict[str, Any] | None = None,
           component: list[Any] | None = None, category: str = "vital-signs") -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation", "id": _id(rng), "status": "final",
        "category": [_cc(OBS_CATEGORY, category, category.replace("-", " ").title())],
        "code": _cc(LOINC, code, display, f"{zh} {display}"),
        "subject": subject, "effectiveDateTime": effective,
        "performer": [{"display": "社区健康小屋 Community health hut"}],
    }
    if value is not None:
        obs["valueQuantity"] = value
    for (c_code, c_display), c_value, unit in component or []:
        obs.setdefault("component", []).append({
            "code": _cc(LOINC, c_code, c_display),
            "valueQuantity": _qty(c_value, unit, unit)})
    return obs


def _visit_with_claim(rng: random.Random, subject: dict[str, Any], p: Person,
                      coverage_id: str, when: datetime,
                      conditions: list[Any]) -> list[dict[str, Any]]:
    clinic = {"reference": f"Organization/{p.zone.clinic}"}
    encounter_id, claim_id = _id(rng), _id(rng)
    diagnosis = rng.choice(conditions)
    created = _ts(when + timedelta(hours=1))
    amount = round(rng.uniform(30, 400), 2)
    encounter = {
        "resourceType": "Encounter", "id": encounter_id, "status": "finished",
        "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "type": [_cc(SNOMED, "185349003", "Encounter for check up", "社区门诊随访")],
        "subject": subject, "serviceProvider": clinic,
        "period": {"start": _ts(when), "end": _ts(when + timedelta(minutes=25))},
        "reasonCode": [_cc(ICD10, diagnosis[0], diagnosis[2], diagnosis[1])],
    }
    claim = {
        "resourceType": "Claim", "id": claim_id, "status": "active",
        "type": _cc(CLAIM_TYPE, "professional", "Professional"), "use": "claim",
        "patient": subject, "created": created, "provider": clinic,
        "insurer": {"reference": "Organization/insurer"},
        "priority": _cc("http://terminology.hl7.org/CodeSystem/processpriority", "normal",
                        "Normal"),
        "diagnosis": [{"sequence": 1, "diagnosisCodeableConcept":
                       _cc(ICD10, diagnosis[0], diagnosis[2])}],
        "insurance": [{"sequence": 1, "focal": True,
                       "coverage": {"reference": f"Coverage/{coverage_id}"}}],
        "item": [{"sequence": 1, "productOrService": _cc(
            "https://fhir.community-exchange.example/CodeSystem/service", "OUTPATIENT",
            "Outpatient visit", "门诊诊疗"),
            "servicedDate": when.date().isoformat(),
            "encounter": [{"reference": f"Encounter/{encounter_id}"}],
            "net": {"value": amount, "currency": "CNY"}}],
        "total": {"value": amount, "currency": "CNY"},
    }
    eob = {
        "resourceType": "ExplanationOfBenefit", "id": _id(rng), "status": "active",
        "type": claim["type"], "use": "claim", "patient": subject, "created": created,
        "insurer": {"reference": "Organization/insurer"}, "provider": clinic,
        "claim": {"reference": f"Claim/{claim_id}"}, "outcome": "complete",
        "insurance": [{"focal": True, "coverage": {"reference": f"Coverage/{coverage_id}"}}],
        "payment": {"amount": {"value": round(amount * 0.7, 2), "currency": "CNY"}},
    }
    return [encounter, claim, eob]


def consents(rng: random.Random, pid: str, p: Person, today: date) -> list[dict[str, Any]]:
    """Most residents let their family clinic treat them and the insurer settle claims."""
    signed = datetime(today.year - 1, rng.randint(1, 12), rng.randint(1, 28), tzinfo=UTC)
    out = []
    if rng.random() < 0.85:
        # A few keep a class out of the clinic's sight: "everything except ..."
        exclude = ["Condition"] if rng.random() < 0.05 else None
        out.append(build_consent(pid, f"Organization/{p.zone.clinic}", ["TREAT", "ETREAT"],
                                 except_classes=exclude, when=signed))
    if rng.random() < 0.7:
        out.append(build_consent(pid, "Organization/insurer", ["HPAYMT"],
                                 classes=["Patient", "Coverage", "Claim",
                                          "ExplanationOfBenefit", "Encounter", "Condition"],
                                 when=signed))
    if rng.random() < 0.4:
        out.append(build_consent(pid, "Organization/hub", ["CAREMGT"],
                                 classes=["Patient", "Condition", "Observation"], when=signed))
    for c in out:
        c["id"] = _id(rng)
    return out


def observation_bundle_for_bench(pid: str, size: int) -> dict[str, Any]:
    """A transaction Bundle of ``size`` heart-rate Observations for one resident."""
    rng = random.Random(size)
    subject = {"reference": f"Patient/{pid}"}
    entries = []
    for i in range(size):
        obs = _vital(rng, subject, f"2025-01-{1 + i % 28:02d}T08:00:00Z", "8867-4",
                     "Heart rate", "心率", value=_qty(60 + i % 40, "/min", "/min"))
        del obs["id"]
        entries.append({"fullUrl": f"urn:uuid:{_id(rng)}", "resource": obs,
                        "request": {"method": "POST", "url": "Observation"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
