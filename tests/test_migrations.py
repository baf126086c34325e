"""Migrations: every revision downgrades and upgrades again, and an upgrade keeps the data.

Databases written by an older release are filled here with plain SQL, using only the tables
and columns that exist at that revision (the revision files are the reference), so the test
does not depend on what today's models look like.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient

from app.auth.deps import hash_key
from app.config import Settings
from app.db import UTCDateTime
from app.entries.service import entry_hash
from app.main import create_app
from app.migrate import current_revision
from app.readings.schemas import ReadingCreate
from tests.databases import Template
from tests.factories import iso

ROOT = Path(__file__).resolve().parent.parent

# Revisions that fix data and leave the schema as it was.
DATA_ONLY = {"3f1c2a7d9e10"}


# --- Alembic, as the plain `alembic` command would run it ------------------------------------
@pytest.fixture
def alembic_at(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """alembic.ini names its script location relative to the project root."""
    monkeypatch.chdir(ROOT)
    yield


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def revisions(config: Config) -> list[str]:
    """Every revision, oldest first (the history is linear)."""
    script = ScriptDirectory.from_config(config)
    assert len(script.get_heads()) == 1, "the migration history has branched"
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def revision_of(url: str) -> str | None:
    engine = sa.create_engine(url)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


def schema_of(url: str) -> dict[str, Any]:
    """Tables with their columns, keys, constraints and indexes (partial index clauses too)."""
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        snapshot: dict[str, Any] = {}
        for table in sorted(inspector.get_table_names()):
            if table == "alembic_version":
                continue
            snapshot[table] = {
                "columns": sorted(
                    (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
                ),
                "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
                "foreign_keys": sorted(
                    (tuple(fk["constrained_columns"]), fk["referred_table"])
                    for fk in inspector.get_foreign_keys(table)
                ),
                "unique": sorted(
                    (uc["name"], tuple(uc["column_names"]))
                    for uc in inspector.get_unique_constraints(table)
                ),
                "indexes": sorted(
                    (
                        ix["name"],
                        tuple(ix["column_names"]),
                        bool(ix["unique"]),
                        tuple(
                            sorted((k, str(v)) for k, v in ix.get("dialect_options", {}).items())
                        ),
                    )
                    for ix in inspector.get_indexes(table)
                ),
            }
        return snapshot
    finally:
        engine.dispose()


# --- (a) every revision downgrades --------------------------------------------------------------
@pytest.mark.usefixtures("alembic_at")
def test_each_revision_downgrades_to_the_schema_before_it_and_upgrades_again(
    template: Template,
) -> None:
    url = template.empty()
    config = alembic_config(url)
    chain = revisions(config)
    assert len(chain) >= 2

    # Up one revision at a time, remembering the schema each one leaves.
    schemas: dict[str | None, dict[str, Any]] = {None: schema_of(url)}
    assert schemas[None] == {}
    previous: str | None = None
    for revision in chain:
        command.upgrade(config, "+1")
        assert revision_of(url) == revision
        schemas[revision] = schema_of(url)
        if revision not in DATA_ONLY:
            assert schemas[revision] != schemas[previous], f"{revision} changes nothing"
        previous = revision

    # Down one at a time to base: each downgrade restores exactly the schema before its revision.
    for position in range(len(chain) - 1, -1, -1):
        command.downgrade(config, "-1")
        below = chain[position - 1] if position > 0 else None
        assert revision_of(url) == below, f"downgrade of {chain[position]}"
        assert schema_of(url) == schemas[below], f"downgrade of {chain[position]}"

    # And up again to head, every step as the first time.
    for revision in chain:
        command.upgrade(config, "+1")
        assert revision_of(url) == revision
        assert schema_of(url) == schemas[revision], f"second upgrade to {revision}"
    command.upgrade(config, "head")  # nothing left to do
    assert revision_of(url) == chain[-1]


# --- (b) an upgrade keeps the data of a database written at the first revision ---------------
def _type_of(value: Any) -> sa.types.TypeEngine[Any] | None:
    """The column type a value of the first revision was written with (None: the driver's own)."""
    if isinstance(value, uuid.UUID):
        return sa.Uuid()
    if isinstance(value, datetime):
        return UTCDateTime()
    if isinstance(value, dict | list):
        return sa.JSON()
    if isinstance(value, bytes):
        return sa.LargeBinary()
    if isinstance(value, bool):
        return sa.Boolean()
    return None


def _typed_binds(values: dict[str, Any]) -> list[sa.BindParameter[Any]]:
    return [sa.bindparam(name, type_=_type_of(value)) for name, value in values.items()]


def insert(conn: sa.Connection, table: str, row: dict[str, Any]) -> None:
    names = ", ".join(row)
    params = ", ".join(f":{name}" for name in row)
    statement = sa.text(f"INSERT INTO {table} ({names}) VALUES ({params})")
    conn.execute(statement.bindparams(*_typed_binds(row)), row)


def select_row(
    conn: sa.Connection, table: str, row: dict[str, Any], key: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The rows of ``table`` whose ``key`` columns equal ``row``'s, with ``row``'s columns."""
    where = {name: row[name] for name in key}
    condition = " AND ".join(f"{name} = :{name}" for name in where)
    text = sa.text(f"SELECT {', '.join(row)} FROM {table} WHERE {condition}")
    types = {name: t for name, value in row.items() if (t := _type_of(value)) is not None}
    statement = text.bindparams(*_typed_binds(where)).columns(**types)
    return [dict(r) for r in conn.execute(statement, where).mappings()]


# How each table's rows are found again (audit entries are numbered by the database).
ROW_KEYS: dict[str, tuple[str, ...]] = {
    "clinics": ("id",),
    "api_keys": ("id",),
    "patients": ("id",),
    "infusions": ("id",),
    "readings": ("id",),
    "observations": ("id",),
    "idempotency_records": ("api_key_id", "key"),
    "audit_events": ("action", "resource_id"),
}


class Legacy:
    """A clinic's data as the first release stored it: sessions in progress, in recovery and
    discharged, readings (one entered in error), observations, keys (one revoked), audit entries
    and a remembered Idempotency-Key."""

    def __init__(self) -> None:
        now = datetime.now(UTC).replace(microsecond=654321)
        self.now = now
        self.rows: dict[str, list[dict[str, Any]]] = {table: [] for table in ROW_KEYS}

        def at(minutes: float) -> datetime:
            return now - timedelta(minutes=minutes)

        self.at = at
        self.clinic_id, self.other_clinic_id = uuid.uuid4(), uuid.uuid4()
        self.add(
            "clinics", id=self.clinic_id, name="Riverside Ketamine Clinic", created_at=at(9000)
        )
        self.add("clinics", id=self.other_clinic_id, name="Lakeside Clinic", created_at=at(8000))

        self.secrets: dict[str, str] = {}
        self.key_ids: dict[str, uuid.UUID] = {}
        for name, role, revoked in (
            ("nurse", "nurse", None),
            ("clinician", "clinician", None),
            ("admin", "admin", None),
            ("revoked", "nurse", at(600)),
        ):
            secret = f"vgl_legacy{name}{uuid.uuid4().hex}"
            self.secrets[name], self.key_ids[name] = secret, uuid.uuid4()
            self.add(
                "api_keys",
                id=self.key_ids[name],
                clinic_id=self.clinic_id,
                role=role,
                label=f"{name} tablet",
                key_hash=hash_key(secret),
                key_prefix=secret[:12],
                created_at=at(8900),
                revoked_at=revoked,
                last_used_at=at(45) if revoked is None else at(700),
            )

        self.patient_a, self.patient_b = uuid.uuid4(), uuid.uuid4()
        self.add(
            "patients", id=self.patient_a, clinic_id=self.clinic_id, mrn="MRN-0042",
            display_name="Alex Rivera", birth_year=1984, contraindications=[],
            created_at=at(3000), updated_at=at(2000),
        )  # fmt: skip
        self.add(
            "patients", id=self.patient_b, clinic_id=self.clinic_id, mrn="MRN-0043",
            display_name="Sam Okafor", birth_year=None, contraindications=["hyperthyroidism"],
            created_at=at(200), updated_at=at(200),
        )  # fmt: skip

        clinician = str(self.key_ids["clinician"])
        # In progress: started 50 minutes ago after a screening override; last vitals 40 min ago.
        self.in_progress = uuid.uuid4()
        self.session(
            self.in_progress, self.patient_a, "in_progress", route="iv", planned_duration_min=40,
            dose_mg_per_kg=0.5, created_at=at(60), updated_at=at(50), started_at=at(50),
            screening_override={
                "reason": "repeat BP 138/88 after rest", "reasons": ["baseline_bp_above_limit"],
                "by": clinician, "at": at(50).isoformat(),
            },
        )  # fmt: skip
        # In recovery: the infusion ended 70 minutes ago, dissociation not resolved since.
        self.recovering = uuid.uuid4()
        self.session(
            self.recovering, self.patient_b, "recovery", route="intranasal",
            planned_duration_min=None, dose_mg_per_kg=None, created_at=at(150),
            updated_at=at(70), started_at=at(140), infusion_ended_at=at(70),
            screening_override={
                "reason": "euthyroid on treatment", "reasons": ["contraindication:hyperthyroidism"],
                "by": clinician, "at": at(140).isoformat(),
            },
        )  # fmt: skip
        # Discharged a day ago, with an override.
        self.discharged = uuid.uuid4()
        self.session(
            self.discharged, self.patient_a, "discharged", route="im", planned_duration_min=45,
            dose_mg_per_kg=0.75, created_at=at(1500), updated_at=at(1400), started_at=at(1490),
            infusion_ended_at=at(1445), discharged_at=at(1400),
            discharge_override={
                "reason": "driven home by partner", "reasons": ["vitals_not_near_baseline"],
                "by": clinician, "at": at(1400).isoformat(),
            },
        )  # fmt: skip

        self.baseline = self.reading(
            self.in_progress, at(55), heart_rate=80, systolic=150, diastolic=95
        )
        self.full = self.reading(
            self.in_progress, at(45), heart_rate=88, systolic=152, diastolic=94, spo2=97,
            respiratory_rate=16, temperature_c=36.8, consciousness="alert", on_oxygen=False,
            source="device", device_id="monitor-7",
        )  # fmt: skip
        self.in_error = self.reading(
            self.in_progress, at(42), systolic=250, diastolic=95,
            entered_in_error_at=at(41), entered_in_error_reason="typed 250 for 150",
        )  # fmt: skip
        self.latest = self.reading(self.in_progress, at(40), heart_rate=84, spo2=96)
        self.reading(self.recovering, at(145), heart_rate=70, systolic=128, diastolic=80)
        self.reading(self.recovering, at(100), heart_rate=76, systolic=132, diastolic=84)
        self.reading(self.discharged, at(1495), heart_rate=66, systolic=118, diastolic=76)
        self.reading(self.discharged, at(1410), heart_rate=64, systolic=121, diastolic=77)

        self.observation(
            self.in_progress, at(44), "nausea", severity=1, note="mild, asked for water"
        )
        self.observation(self.in_progress, at(43), "sedation", moaas=4)
        self.observation(self.in_progress, at(41), "dissociation", severity=2, cadss=14)
        self.observation(self.recovering, at(65), "dissociation", severity=1, cadss=6)
        self.observation(self.discharged, at(1420), "dissociation", severity=0, cadss=2)

        nurse, admin = self.key_ids["nurse"], self.key_ids["admin"]
        self.audit(None, None, "clinic.create", "Clinic", self.clinic_id, at(9000))
        self.audit(admin, "admin", "api_key.create", "ApiKey", self.key_ids["nurse"], at(8900))
        self.audit(nurse, "nurse", "reading.create", "Reading", self.full["id"], at(45))
        self.audit(nurse, "nurse", "session.start", "Session", self.in_progress, at(50))
        self.add(
            "idempotency_records", api_key_id=nurse, key="tablet-7-0001", fingerprint="ab" * 32,
            status_code=201, response_body=b'{"id": "legacy"}', created_at=at(45),
        )  # fmt: skip

    def add(self, table: str, **row: Any) -> dict[str, Any]:
        self.rows[table].append(row)
        return row

    def session(self, id: uuid.UUID, patient_id: uuid.UUID, status: str, **fields: Any) -> None:
        row = {
            "id": id, "clinic_id": self.clinic_id, "patient_id": patient_id, "status": status,
            "protocol_version": 1, "started_at": None, "infusion_ended_at": None,
            "discharged_at": None, "aborted_at": None, "abort_reason": None,
            "screening_override": None, "discharge_override": None, **fields,
        }  # fmt: skip
        self.add("infusions", **row)

    def reading(
        self,
        infusion_id: uuid.UUID,
        measured_at: datetime,
        *,
        entered_in_error_at: datetime | None = None,
        entered_in_error_reason: str | None = None,
        **vitals: Any,
    ) -> dict[str, Any]:
        body = {"id": str(uuid.uuid4()), "measured_at": iso(measured_at), **vitals}
        fields = {name: vitals.get(name) for name in READING_VITALS}
        fields.update(source=vitals.get("source", "manual"), device_id=vitals.get("device_id"))
        return self.add(
            "readings",
            id=uuid.UUID(body["id"]),
            infusion_id=infusion_id,
            clinic_id=self.clinic_id,
            measured_at=measured_at,
            recorded_at=measured_at + timedelta(seconds=20),
            **fields,
            status="final" if entered_in_error_at is None else "entered-in-error",
            entered_in_error_at=entered_in_error_at,
            entered_in_error_reason=entered_in_error_reason,
            recorded_by=self.key_ids["nurse"],
            # As the release computed it, so that a tablet's retry is recognised as one.
            request_hash=entry_hash(ReadingCreate.model_validate(body)),
            body=body,
        )

    def observation(
        self, infusion_id: uuid.UUID, measured_at: datetime, kind: str, **fields: Any
    ) -> None:
        self.add(
            "observations",
            id=uuid.uuid4(),
            infusion_id=infusion_id,
            clinic_id=self.clinic_id,
            measured_at=measured_at,
            recorded_at=measured_at + timedelta(seconds=30),
            kind=kind,
            **{"severity": None, "moaas": None, "cadss": None, "note": None, **fields},
            status="final",
            entered_in_error_at=None,
            entered_in_error_reason=None,
            recorded_by=self.key_ids["nurse"],
            request_hash=uuid.uuid4().hex * 2,
        )

    def audit(
        self,
        actor: uuid.UUID | None,
        role: str | None,
        action: str,
        resource_type: str,
        resource_id: uuid.UUID,
        at: datetime,
    ) -> None:
        self.add(
            "audit_events", at=at, actor_key_id=actor, role=role,
            clinic_id=self.clinic_id if actor else None, action=action,
            resource_type=resource_type, resource_id=str(resource_id),
            request_id=f"req-{uuid.uuid4().hex[:12]}", outcome="success",
        )  # fmt: skip

    def columns(self, table: str) -> list[dict[str, Any]]:
        """The rows as stored: without what only the test keeps (a reading's request body)."""
        return [{k: v for k, v in row.items() if k != "body"} for row in self.rows[table]]

    def write(self, url: str) -> None:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            for table in ROW_KEYS:
                for row in self.columns(table):
                    insert(conn, table, row)
        engine.dispose()

    def check_kept(self, url: str, *, used: bool = False) -> None:
        """Every row is still there, once, with every value it was written with (but the
        last use of keys, once the API has been ``used``)."""
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            for table, key in ROW_KEYS.items():
                for row in self.columns(table):
                    if used and table == "api_keys":
                        row.pop("last_used_at")
                    assert select_row(conn, table, row, key) == [row], (table, row)
        engine.dispose()

    # What the API answers for the stored rows.
    def reading_read(self, row: dict[str, Any], phase: str) -> dict[str, Any]:
        return {
            **{k: row[k] for k in READING_VITALS},
            "id": str(row["id"]), "session_id": str(row["infusion_id"]),
            "measured_at": iso(row["measured_at"]), "recorded_at": iso(row["recorded_at"]),
            "source": row["source"], "device_id": row["device_id"], "status": row["status"],
            "entered_in_error_at": iso(row["entered_in_error_at"]) if row["entered_in_error_at"] else None,
            "entered_in_error_reason": row["entered_in_error_reason"], "phase": phase,
        }  # fmt: skip

    def headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[key]}"}


READING_VITALS = (
    "heart_rate", "systolic", "diastolic", "spo2", "respiratory_rate", "temperature_c",
    "consciousness", "on_oxygen",
)  # fmt: skip


def first_revision(url: str) -> str:
    script = ScriptDirectory.from_config(alembic_config(url))
    [base] = script.get_bases()
    return base


@pytest.fixture
def legacy_url(template: Template, alembic_at: None) -> Iterator[tuple[str, Legacy]]:
    """A database at the first revision holding a clinic's data, then upgraded to head."""
    url = template.empty()
    command.upgrade(alembic_config(url), first_revision(url))
    legacy = Legacy()
    legacy.write(url)
    command.upgrade(alembic_config(url), "head")
    yield url, legacy


def test_upgrade_from_the_first_revision_keeps_every_row(
    legacy_url: tuple[str, Legacy],
) -> None:
    url, legacy = legacy_url
    legacy.check_kept(url)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        for table in ROW_KEYS:  # nothing added either
            count = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
            assert count == len(legacy.rows[table]), table
        # Every clinic numbers its alert changes from 0.
        counters = conn.execute(sa.text("SELECT clinic_id, alert_seq FROM change_counters"))
        assert sorted((uuid.UUID(str(c)), s) for c, s in counters) == sorted(
            [(legacy.clinic_id, 0), (legacy.other_clinic_id, 0)]
        )
        for table in ("alerts", "alert_events", "alert_evidence", "protocol_versions"):
            assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == 0
    engine.dispose()


def test_the_api_serves_and_extends_an_upgraded_database(legacy_url: tuple[str, Legacy]) -> None:
    url, legacy = legacy_url
    nurse = legacy.headers("nurse")
    with TestClient(
        create_app(Settings(database_url=url)), raise_server_exceptions=False
    ) as client:
        assert client.get("/readyz").status_code == 200

        # The key stored as a hash authenticates; the revoked one does not.
        session_url = f"/v1/sessions/{legacy.in_progress}"
        response = client.get(session_url, headers=nurse)
        assert response.status_code == 200, response.text
        session = response.json()
        started_at = legacy.at(50)
        assert {k: session[k] for k in ("id", "patient_id", "status", "route")} == {
            "id": str(legacy.in_progress), "patient_id": str(legacy.patient_a),
            "status": "in_progress", "route": "iv",
        }  # fmt: skip
        assert (session["planned_duration_min"], session["dose_mg_per_kg"]) == (40, 0.5)
        assert session["protocol_version"] == 1
        assert (session["created_at"], session["started_at"]) == (
            iso(legacy.at(60)),
            iso(started_at),
        )
        assert session["baseline"] == {
            "reading_id": str(legacy.baseline["id"]), "measured_at": iso(legacy.at(55)),
            "systolic": 150, "diastolic": 95, "heart_rate": 80,
        }  # fmt: skip
        assert session["screening_override"] == {
            "reason": "repeat BP 138/88 after rest", "reasons": ["baseline_bp_above_limit"],
            "by": str(legacy.key_ids["clinician"]), "at": iso(started_at),
        }  # fmt: skip
        assert client.get(session_url, headers=legacy.headers("revoked")).status_code == 401

        patient = client.get(f"/v1/patients/{legacy.patient_b}", headers=nurse).json()
        assert (patient["mrn"], patient["display_name"], patient["birth_year"]) == (
            "MRN-0043", "Sam Okafor", None,
        )  # fmt: skip
        assert patient["contraindications"] == ["hyperthyroidism"]

        # Readings and observations read back as they were stored.
        readings = [r for r in legacy.rows["readings"] if r["infusion_id"] == legacy.in_progress]
        phases = {legacy.baseline["id"]: "pre"}
        expected = [legacy.reading_read(r, phases.get(r["id"], "intra")) for r in readings]
        listed = client.get(
            f"{session_url}/readings", headers=nurse, params={"include_entered_in_error": True}
        )
        assert listed.json()["items"] == expected
        listed = client.get(f"{session_url}/readings", headers=nurse)
        assert listed.json()["items"] == [r for r in expected if r["status"] == "final"]
        observations = client.get(f"{session_url}/observations", headers=nurse).json()["items"]
        stored = sorted(
            (o for o in legacy.rows["observations"] if o["infusion_id"] == legacy.in_progress),
            key=lambda o: o["measured_at"],
        )
        assert [
            (o["id"], o["kind"], o["severity"], o["moaas"], o["cadss"], o["note"], o["measured_at"])
            for o in observations
        ] == [
            (str(o["id"]), o["kind"], o["severity"], o["moaas"], o["cadss"], o["note"], iso(o["measured_at"]))
            for o in stored
        ]  # fmt: skip

        # A tablet retrying a reading the old release stored gets it back, stored once.
        replay = client.post(f"{session_url}/readings", headers=nurse, json=legacy.full["body"])
        assert replay.status_code == 201, replay.text
        assert {k: replay.json()[k] for k in expected[1]} == expected[1]

        # New evidence on the old session raises alerts under the protocol it started with.
        new = {"measured_at": iso(datetime.now(UTC)), "systolic": 192, "diastolic": 96}
        response = client.post(f"{session_url}/readings", headers=nurse, json=new)
        assert response.status_code == 201, response.text
        raised = {a["rule"]: a for a in response.json()["alerts"]}
        assert raised["bp.systolic.high"]["severity"] == "high"
        assert raised["bp.rise_from_baseline"]["threshold"] == 190  # the legacy baseline + 40
        assert {a["protocol_version"] for a in raised.values()} == {1}
        polled = client.get(
            "/v1/alerts", headers=nurse, params={"session_id": str(legacy.in_progress)}
        )
        assert polled.status_code == 200, polled.text
        assert {a["id"] for a in polled.json()["items"]} >= {a["id"] for a in raised.values()}
        assert isinstance(polled.json()["changes_cursor"], str)
        listed = client.get(f"{session_url}/readings", headers=nurse).json()["items"]
        assert len(listed) == len(expected) - 1 + 1  # the replay added nothing, the new one once

        # The other read models work on the old sessions too.
        board = client.get("/v1/board", headers=nurse)
        assert board.status_code == 200, board.text
        assert {row["session_id"] for row in board.json()["items"]} == {
            str(legacy.in_progress), str(legacy.recovering),
        }  # fmt: skip
        recovery = client.get(f"/v1/sessions/{legacy.recovering}/recovery", headers=nurse)
        assert recovery.status_code == 200, recovery.text
        assert recovery.json()["status"] == "unresolved_overdue"
        summary = client.get(f"/v1/sessions/{legacy.discharged}/summary", headers=nurse)
        assert summary.status_code == 200, summary.text
        assert summary.json()["durations"]["infusion_min"] == 45
        discharged = client.get(f"/v1/sessions/{legacy.discharged}", headers=nurse).json()
        assert discharged["discharge_override"]["reasons"] == ["vitals_not_near_baseline"]

        # The audit trail keeps its old entries, readable by the clinic's admin key.
        audit = client.get(
            "/v1/audit",
            headers=legacy.headers("admin"),
            params={"resource_id": str(legacy.full["id"])},
        )
        assert audit.status_code == 200, audit.text
        [old] = [e for e in audit.json()["items"] if e["action"] == "reading.create"]
        [written] = [e for e in legacy.rows["audit_events"] if e["action"] == "reading.create"]
        assert old == {
            "at": iso(written["at"]), "actor_key_id": str(legacy.key_ids["nurse"]), "role": "nurse",
            "action": "reading.create", "resource_type": "Reading",
            "resource_id": str(legacy.full["id"]), "request_id": written["request_id"],
            "outcome": "success",
        }  # fmt: skip


def test_time_rules_of_sessions_from_before_the_upgrade_are_judged_on_the_first_poll(
    legacy_url: tuple[str, Legacy],
) -> None:
    """API.md: time-based alerts are visible to a poll made after their deadline, without any
    reading being posted; also for sessions that were running when the server was upgraded."""
    url, legacy = legacy_url
    with TestClient(
        create_app(Settings(database_url=url)), raise_server_exceptions=False
    ) as client:
        response = client.get("/v1/alerts", headers=legacy.headers("nurse"))
        assert response.status_code == 200, response.text
        alerts = {(a["session_id"], a["rule"]): a for a in response.json()["items"]}
    overdue = alerts.get((str(legacy.in_progress), "vitals.overdue"))
    assert overdue is not None, "no vitals.overdue: last valid reading 40 min ago"
    assert (overdue["severity"], overdue["status"]) == ("medium", "open")
    unresolved = alerts.get((str(legacy.recovering), "dissociation.unresolved"))
    assert unresolved is not None, "no dissociation.unresolved: infusion ended 70 min ago"
    assert (unresolved["severity"], unresolved["status"]) == ("medium", "open")


def test_downgrade_to_the_first_revision_keeps_the_rows_of_its_tables(
    legacy_url: tuple[str, Legacy],
) -> None:
    """Rolling a release back: the data its tables can hold survives every downgrade."""
    url, legacy = legacy_url
    with TestClient(
        create_app(Settings(database_url=url)), raise_server_exceptions=False
    ) as client:
        body = {"measured_at": iso(datetime.now(UTC)), "systolic": 185, "diastolic": 96}
        response = client.post(
            f"/v1/sessions/{legacy.in_progress}/readings",
            headers=legacy.headers("nurse"),
            json=body,
        )
        assert response.status_code == 201, response.text
        assert response.json()["alerts"]  # the alert tables hold rows that point at readings
    config = alembic_config(url)
    first = first_revision(url)
    while revision_of(url) != first:
        command.downgrade(config, "-1")
    legacy.check_kept(url, used=True)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM readings")).scalar() == (
            len(legacy.rows["readings"]) + 1
        )
    engine.dispose()
