"""Back up, restore, inspect and migrate the backend store of mlflow-globus.

Run as root, with the Python of one of the role's virtualenvs (`upgrade` migrates with that
virtualenv's MLflow). It reads the store URI from the service's EnvironmentFile, so that the
database password never appears on a command line, then becomes the service user, so that
everything it writes belongs to the service. Where those are comes from the settings file the role
writes beside it (mlflow-globus-store.json: env_file, backup_dir, service_user). For example:

  /opt/mlflow-globus/venv/bin/python /opt/mlflow-globus/mlflow-globus-store.py backup manual

  backup LABEL    consistent copy of the store (SQLite online backup, or pg_dump -Fc) as
                  <backup_dir>/mlflow-LABEL-<UTC time>.db|.dump; prints its
                  path, or "none" when there is no store yet
  restore PATH    put a backup back in place of the store (stop the service first)
  revision        the store's schema revision (Alembic), or "none"
  upgrade         `mlflow db upgrade` of the store
"""
import argparse
import contextlib
import datetime
import json
import os
import pwd
import sqlite3
import subprocess
import sys

SETTINGS_FILE = os.path.splitext(os.path.abspath(__file__))[0] + ".json"
# What the role's env template escapes with a backslash inside double quotes.
ESCAPED = '"\\`$'


def read_settings(path=SETTINGS_FILE):
    """env_file, backup_dir and service_user, as the role wrote them."""
    with open(path, encoding="utf-8") as handle:
        settings = json.load(handle)
    missing = {"env_file", "backup_dir", "service_user"} - set(settings)
    if missing:
        raise SystemExit(f"{path} lacks {', '.join(sorted(missing))}: run the mlflow_globus role again")
    return settings


def read_env_file(path):
    """KEY="value" lines as written by the role (systemd's double-quoted form)."""
    env = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, value = line.split("=", 1)
            if len(value) >= 2 and value[0] == value[-1] == '"':
                out, chars = [], iter(value[1:-1])
                for char in chars:
                    if char == "\\":
                        following = next(chars, "")
                        out.append(following if following in ESCAPED else char + following)
                    else:
                        out.append(char)
                value = "".join(out)
            env[key.strip()] = value
    return env


def become_service_user(name):
    entry = pwd.getpwnam(name)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    os.environ["HOME"] = entry.pw_dir
    os.umask(0o027)


def postgres_env(url):
    env = dict(os.environ)
    for name, value in (("PGHOST", url.host), ("PGPORT", url.port), ("PGUSER", url.username),
                        ("PGPASSWORD", url.password), ("PGDATABASE", url.database),
                        ("PGSSLMODE", url.query.get("sslmode"))):
        if value is not None:
            env[name] = str(value)
    return env


def sqlite_copy(source, destination):
    """SQLite's online backup API: a consistent copy even of a database in use."""
    with contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src, \
            contextlib.closing(sqlite3.connect(destination)) as dst:
        src.backup(dst)


def backup(url, label, backup_dir):
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = os.path.join(backup_dir, f"mlflow-{label}-{stamp}")
    if url.get_backend_name() == "sqlite":
        if not url.database or not os.path.exists(url.database):
            return "none"
        path = base + ".db"
        sqlite_copy(url.database, path + ".partial")
    else:
        path = base + ".dump"
        subprocess.run(["pg_dump", "--format=custom", "--file", path + ".partial"],
                       env=postgres_env(url), check=True)
    os.replace(path + ".partial", path)
    return path


def restore(url, path):
    if url.get_backend_name() == "sqlite":
        sqlite_copy(path, url.database)
    else:
        subprocess.run(["pg_restore", "--clean", "--if-exists", "--single-transaction",
                        "--exit-on-error", "--no-owner", "--dbname", url.database, path],
                       env=postgres_env(url), check=True)
    return f"restored {path}"


def revision(url, uri):
    import sqlalchemy

    if url.get_backend_name() == "sqlite" and not os.path.exists(url.database or ""):
        return "none"
    engine = sqlalchemy.create_engine(uri)
    try:
        with engine.connect() as connection:
            if not sqlalchemy.inspect(connection).has_table("alembic_version"):
                return "none"
            return connection.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).scalar() or "none"
    finally:
        engine.dispose()


def upgrade(uri):
    # Exactly `mlflow db upgrade <uri>`, with the URI from the environment file instead of argv.
    from mlflow.db import commands

    commands.main(args=["upgrade", uri], prog_name="mlflow db", standalone_mode=False)
    return "upgraded"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["backup", "restore", "revision", "upgrade"])
    parser.add_argument("argument", nargs="?", help="backup: a label; restore: the backup's path")
    args = parser.parse_args()
    if args.action in ("backup", "restore") and not args.argument:
        parser.error(f"{args.action} needs {'a label' if args.action == 'backup' else 'a path'}")

    from sqlalchemy.engine import make_url

    settings = read_settings()
    uri = read_env_file(settings["env_file"])["MLFLOW_BACKEND_STORE_URI"]
    url = make_url(uri)
    become_service_user(settings["service_user"])
    if args.action == "backup":
        print(backup(url, args.argument, settings["backup_dir"]))
    elif args.action == "restore":
        print(restore(url, args.argument))
    elif args.action == "revision":
        print(revision(url, uri))
    else:
        print(upgrade(uri))


if __name__ == "__main__":
    sys.exit(main())
