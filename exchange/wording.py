"""Plain words, Chinese first and English, for what residents and officers read."""

PURPOSES = {
    "TREAT": ("治疗", "treatment"),
    "ETREAT": ("紧急救治", "emergency treatment"),
    "HPAYMT": ("医保结算", "insurance payment"),
    "CAREMGT": ("社区照护服务", "community care services"),
    "HRESCH": ("医学研究", "research"),
    "HCOMPL": ("合规监督", "compliance oversight"),
}

ACTIONS = {
    "read": ("查看了", "viewed"), "vread": ("查看了", "viewed"),
    "search": ("查询了", "searched"), "history": ("查看了历史版本", "viewed the history of"),
    "everything": ("调阅了完整档案", "retrieved the whole record of"),
    "create": ("新增了", "added"), "update": ("修改了", "changed"),
    "patch": ("修改了", "changed"),
    "delete": ("删除了", "deleted"), "transaction": ("写入了", "wrote"),
    "batch": ("写入了", "wrote"), "audit-read": ("查看了访问记录", "read the access log of"),
}

TYPES = {
    "Patient": ("基本信息", "personal details"),
    "Observation": ("体征和检查记录", "measurements and tests"),
    "Condition": ("疾病诊断", "diagnoses"),
    "Encounter": ("就诊记录", "visits"),
    "MedicationRequest": ("处方", "prescriptions"),
    "MedicationStatement": ("用药记录", "medicines"),
    "Immunization": ("疫苗接种", "vaccinations"),
    "Coverage": ("医保信息", "insurance cover"),
    "Claim": ("医保报销申请", "insurance claims"),
    "ExplanationOfBenefit": ("医保结算单", "insurance settlements"),
    "Consent": ("授权同意书", "consents"),
}

OUTCOMES = {
    "success": ("已提供", "given"),
    "denied": ("已拒绝", "refused"),
    "not-found": ("未找到", "not found"),
    "refused": ("已拒绝", "refused"),
    "error": ("未完成", "not completed"),
}


def zh_en(table: dict[str, tuple[str, str]], key: str | None) -> tuple[str, str]:
    return table.get(key or "", (key or "未知", key or "unknown"))
