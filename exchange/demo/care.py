"""The rest of a synthetic resident's lifelong record: allergies, procedures, care plans
and goals, a yearly activities-of-daily-living assessment, dispensed medicines, a
discharge summary, a lab report and the next appointment at the health hut. And the
directory the records point at: the health hut and its staff.

Drawn from a generator of each resident's own (seeded by the resident's id), so that the
rest of the demo is what it was before these types were stored.
"""

import base64
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
HEALTH_HUT = "Location/health-hut"
NURSE = "Practitioner/nurse-li"

DIRECTORY: list[dict[str, Any]] = [
    {"resourceType": "Location", "id": "health-hut", "status": "active",
     "name": "社区健康小屋 Community health hut", "mode": "instance",
     "address": {"city": "杭州市", "district": "上城区", "line": ["未来社区服务中心一楼"]},
     "managingOrganization": {"reference": "Organization/clinic-a"}},
    {"resourceType": "Practitioner", "id": "nurse-li", "active": True,
     "name": [{"family": "李", "given": ["护士"], "text": "李护士"}],
     "qualification": [{"code": {"text": "注册护士 Registered nurse"}}]},
    {"resourceType": "Practitioner", "id": "dr-zhou", "active": True,
     "name": [{"family": "周", "given": ["医生"], "text": "周医生"}],
     "qualification": [{"code": {"text": "全科医生 General practitioner"}}]},
    {"resourceType": "HealthcareService", "id": "home-nursing", "active": True,
     "name": "居家护理 Home nursing", "location": [{"reference": HEALTH_HUT}],
     "providedBy": {"reference": "Organization/clinic-a"}},
]


def _id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _cc(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def care_record(pid: str, today: date, years: int = 5) -> list[dict[str, Any]]:
    rng = random.Random(f"{pid}-care")
    me = {"reference": f"Patient/{pid}"}
    start = datetime(today.year - years, 1, 15, 9, tzinfo=UTC)
    out: list[dict[str, Any]] = []
    if rng.random() < 0.2:
        out.append({
            "resourceType": "AllergyIntolerance", "id": _id(rng), "patient": me,
            "clinicalStatus": _cc("http://terminology.hl7.org/CodeSystem/"
                                  "allergyintolerance-clinical", "active", "Active"),
            "verificationStatus": _cc("http://terminology.hl7.org/CodeSystem/"
                                      "allergyintolerance-verification", "confirmed",
                                      "Confirmed"),
            "code": _cc(SNOMED, "91936005", "青霉素过敏 Allergy to penicillin"),
            "recordedDate": (start + timedelta(days=rng.randint(0, 900))).date().isoformat()})
    if rng.random() < 0.15:
        out.append({
            "resourceType": "Procedure", "id": _id(rng), "status": "completed", "subject": me,
            "code": _cc(SNOMED, "110473004", "白内障手术 Cataract surgery"),
            "performedDateTime": (start + timedelta(days=rng.randint(100, 1500))).date()
            .isoformat()})
    goal_id = _id(rng)
    out.append({"resourceType": "Goal", "id": goal_id, "lifecycleStatus": "active",
                "subject": me, "description": {"text": "每天步行20分钟 Walk 20 minutes a day"}})
    out.append({"resourceType": "CarePlan", "id": _id(rng), "status": "active",
                "intent": "plan", "subject": me, "title": "防跌倒计划 Falls prevention",
                "period": {"start": (today - timedelta(days=rng.randint(30, 400))).isoformat()},
                "goal": [{"reference": f"Goal/{goal_id}"}],
                "author": {"reference": NURSE}})
    for year in range(years):  # the yearly assessment, as a questionnaire's answers
        when = start + timedelta(days=365 * year + rng.randint(0, 200))
        out.append({
            "resourceType": "QuestionnaireResponse", "id": _id(rng), "status": "completed",
            "subject": me, "authored": when.isoformat(), "author": {"reference": NURSE},
            "item": [{"linkId": item, "text": text, "answer": [
                {"valueInteger": rng.choice((0, 5, 10) if item != "bathing" else (0, 5))}]}
                for item, text in (("feeding", "进食 Feeding"), ("bathing", "洗澡 Bathing"),
                                   ("mobility", "行走 Mobility"))]})
        out.append({
            "resourceType": "DiagnosticReport", "id": _id(rng), "status": "final",
            "subject": me, "effectiveDateTime": when.isoformat(),
            "code": _cc(LOINC, "24323-8", "生化全套 Comprehensive metabolic panel"),
            "conclusion": "结果在正常范围 Within normal limits"})
    if rng.random() < 0.5:
        out.append({
            "resourceType": "MedicationDispense", "id": _id(rng), "status": "completed",
            "subject": me, "medicationCodeableConcept": {"text": "氨氯地平片 Amlodipine 5 mg"},
            "whenHandedOver": (today - timedelta(days=rng.randint(1, 60))).isoformat(),
            "location": {"reference": HEALTH_HUT}})
    if rng.random() < 0.1:
        summary = "出院小结：住院三天，病情平稳出院。Discharged after three days, stable."
        out.append({
            "resourceType": "DocumentReference", "id": _id(rng), "status": "current",
            "subject": me, "type": _cc(LOINC, "18842-5", "出院小结 Discharge summary"),
            "date": (start + timedelta(days=rng.randint(0, 1500))).isoformat(),
            "content": [{"attachment": {"contentType": "text/plain; charset=utf-8",
                                        "data": base64.b64encode(summary.encode()).decode()}}]})
    visit = datetime.combine(today + timedelta(days=rng.randint(3, 40)), datetime.min.time(),
                             UTC) + timedelta(hours=rng.choice((1, 2, 6, 7)))
    out.append({"resourceType": "Appointment", "id": _id(rng), "status": "booked",
                "description": "健康小屋随访 Follow-up at the health hut",
                "start": visit.isoformat(), "end": (visit + timedelta(minutes=30)).isoformat(),
                "participant": [{"actor": me, "status": "accepted"},
                                {"actor": {"reference": HEALTH_HUT}, "status": "accepted"}]})
    return out
