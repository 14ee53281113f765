"""Scenario: what field encryption costs a write and a read.

The same member model twice on dynalite, once with ``email`` and ``name`` encrypted
(and a blind index of the email) and once in plaintext: sequential saves and gets of
the same items through the repository, interleaved rounds, wall time and CPU of the
calling thread per operation. Beside them, sealing and opening alone (no request),
which is all the CPU encryption adds. Local keys (no KMS round trip: with KMS, each
write adds a GenerateDataKey call and each read a Decrypt call unless cached).
"""

from __future__ import annotations

import base64
import os
import time
from typing import Any, ClassVar

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from portchops_models import BaseModel, configure
from portchops_models.admin.tables import create_table
from portchops_models.metrics import Metrics
from portchops_models.models.encryption import BlindIndex, encryption_of
from portchops_models.models.shape import shape_of
from portchops_models.ops.requests import serialize_item
from portchops_models.repository import Repository
from portchops_models.settings import current_settings
from portchops_models.transport.codec import encode_body

from .common import Column, ScenarioResult, Spread, Target, interleaved, ratio
from .context import Bench

#: CPU that sealing (a write) or opening (a read) may add an item, in microseconds: less
#: than a loopback round trip, so encryption never dominates a request (#26)
CRYPTO_LIMIT_US = 250.0


class _ByEmail(GlobalSecondaryIndex["SealedMember"]):
    class Meta:
        index_name = "email-lookup-index"
        projection = AllProjection()

    email_lookup = UnicodeAttribute(hash_key=True, attr_name="emailLookup")


class SealedMember(BaseModel):
    """Email and name encrypted, found by a blind index of the email."""

    base_table_name: ClassVar[str] = "bench-sealed-members"
    encrypted: ClassVar[tuple[str, ...]] = ("email", "name")
    member_id = UnicodeAttribute(hash_key=True, attr_name="memberId")
    email = UnicodeAttribute()
    name = UnicodeAttribute()
    logins = NumberAttribute(default=0)
    email_lookup = BlindIndex("email", attr_name="emailLookup")
    by_email = _ByEmail()


class PlainMember(BaseModel):
    """The same attributes in plaintext."""

    base_table_name: ClassVar[str] = "bench-plain-members"
    member_id = UnicodeAttribute(hash_key=True, attr_name="memberId")
    email = UnicodeAttribute()
    name = UnicodeAttribute()
    logins = NumberAttribute(default=0)


class _Sealed(Repository[SealedMember, str]):
    model = SealedMember


class _Plain(Repository[PlainMember, str]):
    model = PlainMember


def run(bench: Bench) -> ScenarioResult:
    started = time.perf_counter()
    count, rounds = bench.scale.point_ops, bench.scale.point_rounds
    key = base64.b64encode(os.urandom(32)).decode()
    configure(
        current_settings(),
        encryption_keys=f"k1={key}",
        encryption_lookup_key="benchmark-lookup-key",
    )
    create_table(SealedMember)
    create_table(PlainMember)
    sealed, plain = _Sealed(cache=None, metrics=Metrics()), _Plain(cache=None, metrics=Metrics())
    ids = [f"m-{n:05d}" for n in range(count)]

    def member(cls: Any, n: int) -> Any:
        return cls(member_id=ids[n], email=f"member{n}@example.com", name=f"Member {n}")

    contenders = {
        "plain save": lambda: [plain.save(member(PlainMember, n)) for n in range(count)],
        "encrypted save": lambda: [sealed.save(member(SealedMember, n)) for n in range(count)],
        "plain get": lambda: [plain.get(i) for i in ids],
        "encrypted get": lambda: [sealed.get(i) for i in ids],
    }
    samples = interleaved(contenders, rounds)
    shape = shape_of(SealedMember)
    fields = encryption_of(SealedMember)
    assert fields is not None
    raw = serialize_item(shape, member(SealedMember, 0), SealedMember.table_name())

    def _plain_raw(n: int) -> dict[str, Any]:
        return {
            "memberId": {"S": ids[n]},
            "email": {"S": f"member{n}@example.com"},
            "name": {"S": f"Member {n}"},
            "logins": {"N": "0"},
        }

    crypto = interleaved(
        {"seal": lambda: [fields.seal(_plain_raw(n)) for n in range(count)],
         "open": lambda: [fields.open(raw) for _ in range(count)]},
        rounds,
    )  # fmt: skip
    per_op = {
        name: Spread.of([s.wall / count * 1e6 for s in values]) for name, values in samples.items()
    }
    cpu = {
        name: Spread.of([s.cpu / count * 1e6 for s in values]) for name, values in samples.items()
    }
    crypto_cpu = {
        name: Spread.of([s.cpu / count * 1e6 for s in values]) for name, values in crypto.items()
    }
    get_ratio = ratio(
        [s.wall for s in samples["encrypted get"]], [s.wall for s in samples["plain get"]]
    )
    save_ratio = ratio(
        [s.wall for s in samples["encrypted save"]], [s.wall for s in samples["plain save"]]
    )
    rows = [
        {"path": name, "us_wall": per_op[name].median, "us_cpu": cpu[name].median}
        for name in contenders
    ]
    rows += [
        {"path": f"{name} alone (no request)", "us_wall": None, "us_cpu": crypto_cpu[name].median}
        for name in crypto_cpu
    ]
    sizes = (len(encode_body({"Item": raw})), len(encode_body({"Item": _plain_raw(0)})))
    return ScenarioResult(
        key="encryption",
        title=f"14. Field encryption: {count} saves and gets, encrypted against plaintext",
        setup={"items": count, "rounds": rounds, "keys": "local (AES-256 wrap, HMAC-SHA256)"},
        columns=[
            Column("path", "path", "{}"),
            Column("us_wall", "us/op wall", "{:.0f}"),
            Column("us_cpu", "us/op CPU", "{:.0f}"),
        ],
        rows=rows,
        targets=[
            Target(
                f"{name} alone, CPU an item",
                crypto_cpu[name].median,
                CRYPTO_LIMIT_US,
                "<=",
                unit=" us",
                spread=crypto_cpu[name].range,
                source="#26",
                floor="absolute",
            )
            for name in ("seal", "open")
        ],
        notes=[
            f"An encrypted save costs {save_ratio.times()} a plaintext one and an encrypted "
            f"get {get_ratio.times()} (wall, same engine); sealing alone is "
            f"{crypto_cpu['seal'].median:.0f} us of CPU an item and opening "
            f"{crypto_cpu['open'].median:.0f} us.",
            f"A sealed member is {sizes[0]} bytes on the wire against {sizes[1]} in plaintext "
            "(the ciphertext, padded to 16 bytes and in base64, the signature and the "
            "material description).",
        ],
        seconds=time.perf_counter() - started,
        extra={
            "bytes_sealed": sizes[0],
            "bytes_plain": sizes[1],
            "get_ratio": get_ratio.median,
            "save_ratio": save_ratio.median,
            "seal_us": crypto_cpu["seal"].median,
            "open_us": crypto_cpu["open"].median,
        },
    )
