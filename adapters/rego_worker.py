"""The embedded decision point's worker: regorus' interpreter in a process of its own, so
that a deadline in the exchange can end an evaluation (``rego_embedded.py`` says why).

Run as ``python -m adapters.rego_worker <policy dir>``. It answers its policy revision,
then one answer per request; messages on stdin and stdout are framed by
``rego_embedded.frame``. An input it cannot evaluate is answered with an empty message.
"""

import json
import sys
from pathlib import Path

import orjson
import regorus

from adapters.rego_embedded import frame
from exchange.decisions.bundle import load_bundle


def main(policy_dir: Path) -> None:
    bundle = load_bundle(policy_dir)
    engine = regorus.Engine()
    for name, text in bundle.modules:
        engine.add_policy(name, text)
    engine.add_data_json(json.dumps(bundle.data))
    out, source = sys.stdout.buffer, sys.stdin.buffer
    out.write(frame(bundle.revision.encode()))
    out.flush()
    while header := source.read(8):
        request = orjson.loads(source.read(int.from_bytes(header, "big")))
        try:
            engine.set_input_json(request["input"])
            answer = str(engine.eval_rule_as_json(request["entry_point"])).encode()
        except RuntimeError:
            answer = b""
        out.write(frame(answer))
        out.flush()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
