"""Consent templates in plain language, Chinese first and English, for the portal.

A template plus a resident's choices becomes a FHIR ``Consent`` (``instantiate``); the
Consent records the template's id and version, and so does every receipt.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consent.model import build_consent
from exchange.errors import InvalidRequest


@dataclass(frozen=True)
class Template:
    id: str
    version: str
    title: tuple[str, str]
    text: tuple[str, str]
    purposes: tuple[str, ...]
    recipient_kind: str  # the kind of organization; "choose" templates name one of that kind
    choose_recipient: bool
    classes: tuple[str, ...] = ()
    form: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version,
                "title": {"zh": self.title[0], "en": self.title[1]},
                "text": {"zh": self.text[0], "en": self.text[1]},
                "purposes": list(self.purposes), "recipient_kind": self.recipient_kind,
                "choose_recipient": self.choose_recipient,
                "data_classes": list(self.classes) or ["all"],
                "disclosure_form": self.form or "identified"}


TEMPLATES = {t.id: t for t in (
    Template("family-clinic", "1",
             ("家庭医生诊所看病", "My family clinic, for treatment"),
             ("我的家庭医生诊所可以为给我看病查看我的健康记录。",
              "My family clinic may see my records to treat me."),
             ("TREAT", "ETREAT"), "clinic", True),
    Template("insurer-claims", "1",
             ("医保结算", "Insurance claims"),
             ("医保机构可以使用我的就诊和费用记录来结算医保报销。",
              "The insurer may use my visits and claims to pay for my care."),
             ("HPAYMT",), "insurer", False,
             ("Patient", "Coverage", "Claim", "ExplanationOfBenefit", "Encounter",
              "Condition")),
    Template("hub-care-needs", "1",
             ("社区照护服务", "Community care services"),
             ("社区运营方可以在不知道我姓名的情况下了解我的照护需要，为我推荐服务。",
              "The community hub may learn my care needs, without my name, to offer me "
              "services."),
             ("CAREMGT",), "hub", False, ("Patient", "Condition", "Observation"),
             "pseudonymized"),
    Template("research-anonymous", "1",
             ("医学研究（不含姓名）", "Research without my name"),
             ("研究人员可以在不知道我是谁的情况下使用我的数据。",
              "Researchers may use my data without knowing who I am."),
             ("HRESCH",), "research", False, ("Patient", "Condition", "Observation"),
             "pseudonymized"),
)}


def instantiate(template_id: str, resident: str, *, organization: str | None = None,
                end: datetime | None = None, exclude: list[str] | None = None,
                when: datetime | None = None) -> dict[str, Any]:
    template = TEMPLATES.get(template_id)
    if template is None:
        raise InvalidRequest("No such consent template.")
    if template.choose_recipient and not (organization or "").startswith("Organization/"):
        raise InvalidRequest("This template needs the chosen organization (Organization/<id>).")
    if not template.choose_recipient and organization:
        raise InvalidRequest("This template's recipient is a kind of organization, not one.")
    return build_consent(
        resident, organization if template.choose_recipient else None,
        list(template.purposes), classes=list(template.classes) or None, end=end,
        except_classes=exclude or None,
        organization_kind=None if template.choose_recipient else template.recipient_kind,
        form=template.form, when=when, template=(template.id, template.version))
