"""Synthetic people: Chinese names, resident ID numbers with valid check digits, phones.

Everything here is generated; no real person stands behind any value.
"""

import random
from dataclasses import dataclass
from datetime import date

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋"
            "余于杜叶程魏苏吕丁任沈姚卢傅钟姜崔谭廖范汪陆金石戴贾韦夏邱方侯邹熊孟秦白江")
GIVEN_FEMALE = ("秀英", "桂英", "秀兰", "玉兰", "桂兰", "凤英", "玉珍", "淑珍", "丽华", "金凤",
                "素珍", "月英", "美华", "翠英", "芳", "敏", "静", "霞", "萍", "红梅")
GIVEN_MALE = ("建国", "建华", "国庆", "国强", "志强", "德明", "文华", "振华", "卫东", "永明",
              "立新", "长林", "金海", "福生", "明", "华", "军", "伟", "刚", "勇")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


@dataclass(frozen=True)
class Zone:
    code: str  # the district's administrative division code
    district: str
    community: str
    street: str
    clinic: str  # the community's family clinic (Organization id)


ZONES = (
    Zone("330106", "西湖区", "翠苑社区", "文二西路", "clinic-a"),
    Zone("330105", "拱墅区", "和睦社区", "和睦路", "clinic-b"),
    Zone("330102", "上城区", "湖滨社区", "东坡路", "clinic-a"),
    Zone("330108", "滨江区", "缤纷社区", "江南大道", "clinic-b"),
)


@dataclass(frozen=True)
class Person:
    family: str
    given: str
    gender: str  # FHIR administrative gender
    birth: date
    id_number: str
    mobile: str
    zone: Zone
    address_line: str
    insurance_card: str


def check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2, as GB 11643 specifies for the 18th character."""
    total = sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK[total % 11]


def id_number_valid(number: str) -> bool:
    return (len(number) == 18 and number[:17].isdigit()
            and check_digit(number[:17]) == number[17].upper())


def make_id_number(rng: random.Random, region: str, birth: date, gender: str) -> str:
    sequence = rng.randrange(0, 500) * 2 + (1 if gender == "male" else 0)  # odd: male
    first17 = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return first17 + check_digit(first17)


def make_person(rng: random.Random, index: int) -> Person:
    zone = ZONES[index % len(ZONES)]
    gender = rng.choice(("male", "female"))
    birth = date(rng.randint(1936, 1960), rng.randint(1, 12), rng.randint(1, 28))
    given = rng.choice(GIVEN_MALE if gender == "male" else GIVEN_FEMALE)
    mobile = rng.choice(("135", "138", "139", "150", "158", "177", "186", "189")) + \
        f"{rng.randrange(10**8):08d}"
    line = f"{zone.street}{rng.randint(1, 300)}号{rng.randint(1, 30)}幢{rng.randint(1, 6)}" \
           f"{rng.randint(1, 4):02d}室"
    return Person(rng.choice(SURNAMES), given, gender, birth,
                  make_id_number(rng, zone.code, birth, gender), mobile, zone, line,
                  f"ZJ{rng.randrange(10**10):010d}")
