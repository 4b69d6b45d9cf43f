"""Back up, restore, inspect and migrate the backend store of mlflow-globus.

Run as root, with the Python of one of the role's virtualenvs (`upgrade` migrates with that
virtualenv's MLflow). It reads the store URI from the service's EnvironmentFile, so that the
database password never appears on a command line, then becomes the service user, so that
everything it writes belongs to the service. Where those are comes from the settings file the role
writes beside it (mlflow-globus-store.json: env_file, backup_dir, service_user, and auth_config when
MLflow's auth app runs: its ini file names the auth database). For example:

  /opt/mlflow-globus/venv/bin/python /opt/mlflow-globus/mlflow-globus-store.py backup manual

  backup LABEL    consistent copy of the store (SQLite online backup, or pg_dump -Fc) as
                  <backup_dir>/mlflow-LABEL-<UTC time>.db|.dump; prints its
                  path, or "none" when there is no store yet. A SQLite auth database
                  of its own is copied beside it (<same name>.auth.db); one inside the
                  PostgreSQL store is in its dump already
  restore PATH    put a backup back in place of the store (and the auth database copied
                  beside it, if any; stop the service first)
  revision        the store's schema revision (Alembic), or "none"
  upgrade         `mlflow db upgrade` of the store, then the auth database's own migration
  permissions     set the grants read as JSON from standard input ({"grants": [{user,
                  resource: experiment|registered_model, name, permission or null}],
                  "known_users": [...], "check": bool}) in the auth app's database, with
                  MLflow's own stores; prints what each was and is as JSON. Exit 3, writing
                  nothing, when an experiment, model or user is unknown (the module
                  alcf.mlflow_globus.mlflow_permissions runs this)
"""
import configparser
import argparse
import contextlib
import datetime
import json
import os
import pwd
import secrets
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


def read_auth_uri(path):
    """The auth app's database URI from its ini file, or None without one."""
    if not path:
        return None
    parser = configparser.ConfigParser()
    if not parser.read(path, encoding="utf-8"):
        raise SystemExit(f"{path} (the auth app's settings) cannot be read: run the mlflow_globus role again")
    return parser["mlflow"]["database_uri"]


def separate_sqlite(auth_url, url):
    """The auth database's file when it is SQLite and not the store itself, else None."""
    if auth_url is None or auth_url.get_backend_name() != "sqlite" or not auth_url.database:
        return None
    if url.get_backend_name() == "sqlite" and os.path.abspath(url.database or "") == os.path.abspath(auth_url.database):
        return None
    return auth_url.database


def auth_copy_of(path):
    """Where a backup's copy of the auth database goes: beside it, same name."""
    return os.path.splitext(path)[0] + ".auth.db"


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


def backup(url, label, backup_dir, auth_url=None):
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
    auth_db = separate_sqlite(auth_url, url)
    if auth_db and os.path.exists(auth_db):
        sqlite_copy(auth_db, auth_copy_of(path) + ".partial")
        os.replace(auth_copy_of(path) + ".partial", auth_copy_of(path))
    # The store's copy last: a backup whose path exists is whole.
    os.replace(path + ".partial", path)
    return path


def restore(url, path, auth_url=None):
    if url.get_backend_name() == "sqlite":
        sqlite_copy(path, url.database)
    else:
        subprocess.run(["pg_restore", "--clean", "--if-exists", "--single-transaction",
                        "--exit-on-error", "--no-owner", "--dbname", url.database, path],
                       env=postgres_env(url), check=True)
    auth_db = separate_sqlite(auth_url, url)
    if auth_db and os.path.exists(auth_copy_of(path)):
        sqlite_copy(auth_copy_of(path), auth_db)
        return f"restored {path} and {auth_copy_of(path)}"
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


def upgrade(uri, auth_uri=None):
    # Exactly `mlflow db upgrade <uri>`, with the URI from the environment file instead of argv;
    # then the auth app's `python -m mlflow.server.auth db upgrade --url <auth uri>`, which MLflow
    # would otherwise run at its first start, outside the backup-and-rollback of the upgrade.
    from mlflow.db import commands

    commands.main(args=["upgrade", uri], prog_name="mlflow db", standalone_mode=False)
    if auth_uri:
        from mlflow.server.auth.db import cli

        cli.commands.main(args=["upgrade", "--url", auth_uri], prog_name="mlflow auth db", standalone_mode=False)
        return "upgraded the store and the auth database"
    return "upgraded"


class Refused(Exception):
    """Grants naming what does not exist; nothing was written."""

    def __init__(self, problems):
        super().__init__("; ".join(problems))
        self.problems = problems


class PermissionStores:
    """MLflow's auth store (grants) and tracking client (experiments, models), through their own APIs:
    the *_experiment_permission and *_registered_model_permission methods MLflow 3.16 and 3.17 share."""

    def __init__(self, auth_uri, tracking_uri):
        from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore
        from mlflow.tracking import MlflowClient

        self.auth = SqlAlchemyStore()
        self.auth.init_db(auth_uri)
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def resource_id(self, resource, name):
        from mlflow.exceptions import MlflowException

        if resource == "experiment":
            experiment = self.client.get_experiment_by_name(name)
            return None if experiment is None else experiment.experiment_id
        try:
            return self.client.get_registered_model(name).name
        except MlflowException:
            return None

    def has_user(self, user):
        return self.auth.has_user(user)

    def create_user(self, user):
        # As the auth module does at a first sign-in: a password nobody knows (users sign in with Globus).
        self.auth.create_user(user, secrets.token_urlsafe(32))

    def permission(self, user, resource, ident):
        from mlflow.exceptions import MlflowException

        try:
            return getattr(self.auth, f"get_{resource}_permission")(ident, user).permission
        except MlflowException:
            return None

    def apply(self, grant):
        kind = grant["resource"]
        if grant["action"] == "delete":
            getattr(self.auth, f"delete_{kind}_permission")(grant["id"], grant["user"])
        else:
            getattr(self.auth, f"{grant['action']}_{kind}_permission")(grant["id"], grant["user"], grant["after"])


def plan(grants, current):
    """Each grant with before, after and the action (create, update, delete, none); ``current`` maps
    (user, resource, id) to the permission held now."""
    planned = []
    for grant in grants:
        before = current.get((grant["user"], grant["resource"], grant["id"]))
        after = grant["permission"]
        if before == after:
            action = "none"
        elif after is None:
            action = "delete"
        elif before is None:
            action = "create"
        else:
            action = "update"
        planned.append(dict(grant, before=before, after=after, action=action))
    return planned


def set_permissions(stores, grants, known_users, check):
    """Check every grant's experiment or model and user, then (unless ``check``) create the allowlisted
    users who never signed in and write what differs. Raises Refused, before any write, naming each unknown."""
    problems = []
    for grant in grants:
        grant["id"] = stores.resource_id(grant["resource"], grant["name"])
        if grant["id"] is None:
            problems.append(f"{grant['resource'].replace('_', ' ')} {grant['name']!r} does not exist (for {grant['user']})")
    missing = [user for user in sorted({grant["user"] for grant in grants}) if not stores.has_user(user)]
    unknown = [user for user in missing if user not in known_users]
    if unknown:
        problems.append(f"no MLflow user {', '.join(unknown)}: they have never signed in, and known_users "
                        "(the allowlist) does not list them")
    if problems:
        raise Refused(problems)
    current = {(g["user"], g["resource"], g["id"]): stores.permission(g["user"], g["resource"], g["id"])
               for g in grants if g["user"] not in missing}
    planned = plan(grants, current)
    if not check:
        for user in missing:
            stores.create_user(user)
        for grant in planned:
            if grant["action"] != "none":
                stores.apply(grant)
    return {
        "changed": bool(missing) or any(g["action"] != "none" for g in planned),
        "grants": [{k: g[k] for k in ("user", "resource", "name", "id", "before", "after", "action")} for g in planned],
        "created_users": missing,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["backup", "restore", "revision", "upgrade", "permissions"])
    parser.add_argument("argument", nargs="?", help="backup: a label; restore: the backup's path")
    args = parser.parse_args()
    if args.action in ("backup", "restore") and not args.argument:
        parser.error(f"{args.action} needs {'a label' if args.action == 'backup' else 'a path'}")

    from sqlalchemy.engine import make_url

    settings = read_settings()
    uri = read_env_file(settings["env_file"])["MLFLOW_BACKEND_STORE_URI"]
    url = make_url(uri)
    auth_uri = read_auth_uri(settings.get("auth_config"))
    auth_url = make_url(auth_uri) if auth_uri else None
    if auth_uri:  # MLflow's auth package reads its settings when it is imported
        os.environ["MLFLOW_AUTH_CONFIG_PATH"] = settings["auth_config"]
    become_service_user(settings["service_user"])
    if args.action == "backup":
        print(backup(url, args.argument, settings["backup_dir"], auth_url))
    elif args.action == "restore":
        print(restore(url, args.argument, auth_url))
    elif args.action == "revision":
        print(revision(url, uri))
    elif args.action == "permissions":
        if not auth_uri:
            raise SystemExit("MLflow's auth app is off (mlflow_globus_identity): there are no permissions to set")
        request = json.load(sys.stdin)
        try:
            print(json.dumps(set_permissions(PermissionStores(auth_uri, uri), request["grants"],
                                             set(request["known_users"]), request["check"])))
        except Refused as refused:
            print(json.dumps({"refused": refused.problems}))
            return 3
    else:
        print(upgrade(uri, auth_uri))


if __name__ == "__main__":
    sys.exit(main())
