"""Free-text scrubbing as a property: whatever surrounds them, ID numbers, mobile numbers
and the resident's own name do not survive, and the rest of the text does."""

import random
from datetime import date

from hypothesis import example, given, settings
from hypothesis import strategies as st

from exchange.demo.people import make_id_number
from exchange.privacy.free_text import REPLACEMENT, Subject, scrub

# Surrounding text never holds digits (they would extend the number) or the name's
# characters (they would be scrubbed with it).
ALPHABET = st.sampled_from(list("abcdefgXYZ ,.:;()（）：，。请回电家属邻居复诊血压"))
words = st.text(alphabet=ALPHABET, max_size=12)
separators = st.text(alphabet=ALPHABET, min_size=1, max_size=12)
SUBJECT = Subject.of("p1", {"name": [{"family": "欧阳", "given": ["明珠"], "text": "欧阳明珠"}],
                            "telecom": [{"system": "phone", "value": "13700009999"}]})


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    rng = random.Random(draw(st.integers(0, 2**32)))
    birth = draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2020, 12, 31)))
    return make_id_number(rng, draw(st.sampled_from(["330106", "330105", "110101"])), birth,
                          draw(st.sampled_from(["female", "male"])))


@st.composite
def mobiles(draw: st.DrawFn) -> str:
    digits = "1" + draw(st.sampled_from("3456789")) + "".join(
        draw(st.lists(st.sampled_from("0123456789"), min_size=9, max_size=9)))
    sep = draw(st.sampled_from(["", " ", "-"]))
    prefix = draw(st.sampled_from(["", "+86", "+86 ", "86-"]))
    return prefix + digits[:3] + sep + digits[3:7] + sep + digits[7:]


secrets = st.one_of(id_numbers(), mobiles(), st.sampled_from(["欧阳明珠", "明珠", "欧阳"]))


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.tuples(separators, secrets), min_size=1, max_size=4), tail=words)
@example(parts=[(":", "+8613000000000"), (" ", "13000000000")], tail="")  # left a "+"
def test_secrets_never_survive_and_the_rest_does(parts, tail) -> None:
    text = "".join(w + s for w, s in parts) + tail
    out = scrub(text, SUBJECT)
    for _, secret in parts:
        core = "".join(ch for ch in secret if ch.isdigit())[-8:] or secret
        assert core not in out, (secret, out)
    # (numbers written one space apart are removed with the space between them)
    assert out.replace(REPLACEMENT, "").replace(" ", "") == \
        ("".join(w for w, _ in parts) + tail).replace(" ", "")


@settings(max_examples=100, deadline=None)
@given(numbers=st.lists(st.one_of(id_numbers(), mobiles()), min_size=2, max_size=4))
def test_numbers_written_together_do_not_survive(numbers) -> None:
    out = scrub("".join(numbers), SUBJECT)
    assert sum(ch.isdigit() for ch in out) <= 3  # at most a stray country code
