"""Test helper, run on the MLflow host by the service's own interpreter (it has SQLAlchemy and the
database driver), as the service user, on the store named in the service's EnvironmentFile.

  fingerprint   {"backend", "revision", "tables", "schema_sha256"}: the Alembic revision and a hash of every
                table's columns and indexes, to show that a failed migration left nothing behind
  block         add an empty table named like one that MLflow 3.17's migration 75868b020152
                creates, the kind of leftover an interrupted migration leaves: `mlflow db upgrade`
                then fails part-way ("already exists"), after it has altered other tables
  unblock       drop that table again
"""

import hashlib
import json
import os
import pwd
import sys

import sqlalchemy

ENV_FILE = "/etc/mlflow-globus/mlflow-globus.env"
LEFTOVER = "sql_trace_rollup_rebuild_queue"


def store_uri():
    with open(ENV_FILE, encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("MLFLOW_BACKEND_STORE_URI="):
                value = line.split("=", 1)[1].strip()
                if value[:1] == value[-1:] == '"':
                    value = value[1:-1]
                for char in '"\\`$':
                    value = value.replace("\\" + char, char)
                return value
    sys.exit(f"no MLFLOW_BACKEND_STORE_URI in {ENV_FILE}")


def fingerprint(engine):
    inspector = sqlalchemy.inspect(engine)
    tables = []
    for table in sorted(inspector.get_table_names()):
        columns = [[c["name"], str(c["type"]), c["nullable"]] for c in inspector.get_columns(table)]
        indexes = sorted([i["name"] or "", i["column_names"]] for i in inspector.get_indexes(table))
        tables.append([table, columns, indexes])
    with engine.connect() as connection:
        revision = connection.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).scalar()
    digest = hashlib.sha256(json.dumps(tables, default=str).encode()).hexdigest()
    return {"backend": engine.dialect.name, "revision": revision, "tables": len(tables),
            "schema_sha256": digest}


def main():
    uri = store_uri()
    user = pwd.getpwnam("mlflow")
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    engine = sqlalchemy.create_engine(uri)
    action = sys.argv[1]
    if action == "fingerprint":
        print(json.dumps(fingerprint(engine)))
    elif action == "block":
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f"CREATE TABLE {LEFTOVER} (left_over INTEGER)"))
        print(json.dumps({"created": LEFTOVER}))
    elif action == "unblock":
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f"DROP TABLE {LEFTOVER}"))
        print(json.dumps({"dropped": LEFTOVER}))
    else:
        sys.exit(f"unknown action {action}")


if __name__ == "__main__":
    main()
