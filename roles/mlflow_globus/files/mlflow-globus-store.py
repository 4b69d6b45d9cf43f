"""Back up, restore, inspect and migrate the backend store of mlflow-globus.

Run as root, with the Python of one of the role's virtualenvs (`upgrade` migrates with that
virtualenv's MLflow). It reads the store URI from the service's EnvironmentFile, so that the
database password never appears on a command line, then becomes the service user, so that
everything it writes belongs to the service. Where those are comes from the settings file the role
writes beside it (mlflow-globus-store.json: env_file, backup_dir, service_user; auth_config when
MLflow's auth app runs, its ini file naming the auth database; artifacts_dir when artifacts are local;
artifacts_uri, where the artifacts are (a backup's manifest records it, and whether it holds them);
metrics_textfile and backup_max_age_seconds for `newest`; service_venv, whose MLflow release a backup's
manifest names). Refusals (a damaged or too new backup, an
unknown grant) print {"refused": [...]} and exit 3, having written nothing. For example:

  /opt/mlflow-globus/venv/bin/python /opt/mlflow-globus/mlflow-globus-store.py backup manual

  backup LABEL    a backup directory <backup_dir>/mlflow-LABEL-<UTC time>: store.db
                  (SQLite online backup) or store.dump (pg_dump -Fc), auth.db (a SQLite
                  auth database of its own; one inside the PostgreSQL store is in its
                  dump), artifacts.tar (the local artifacts, unless --store-only) and
                  manifest.json (MLflow version, schema revision, sizes, SHA-256, and
                  under "artifacts" where they are and whether this backup holds them:
                  artifacts in an object store, s3://..., are never copied);
                  prints its path, or "none" when there is no store yet. --keep N
                  then removes all but the label's newest N
  restore PATH    check a backup, keep what it replaces aside (label before-restore),
                  put it in place of the store, auth database and artifacts (stop the
                  service first); prints JSON. Migrate with `upgrade` afterwards
  check PATH      the backup's manifest with "schema": current, older (migrate after
                  restoring); exit 3 when a checksum fails or the installed MLflow does
                  not know its schema revision (a newer release's)
  newest          the newest whole backup's path and age as JSON; also written for node
                  exporter's textfile collector (settings: metrics_textfile), as root
  revision        the store's schema revision (Alembic), or "none"
  upgrade         `mlflow db upgrade` of the store, then the auth database's own migration
  permissions     set the grants read as JSON from standard input ({"grants": [{user,
                  resource: experiment|registered_model, name, permission or null}],
                  "known_users": [...], "check": bool}) in the auth app's database, with
                  MLflow's own stores; prints what each was and is as JSON. Exit 3, writing
                  nothing, when an experiment, model or user is unknown (the module
                  alcf.mlflow_globus.mlflow_permissions runs this)
"""
import argparse
import configparser
import contextlib
import datetime
import glob
import hashlib
import importlib.metadata
import json
import os
import pwd
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tarfile

SETTINGS_FILE = os.path.splitext(os.path.abspath(__file__))[0] + ".json"
MANIFEST = "manifest.json"
FORMAT = 1
# What the role's env template escapes with a backslash inside double quotes.
ESCAPED = '"\\`$'


class Refused(Exception):
    """Input naming what does not exist or does not fit (unknown grants, a damaged or too new backup);
    nothing was written."""

    def __init__(self, problems):
        super().__init__("; ".join(problems))
        self.problems = problems


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


def mlflow_version(venv=None):
    """The MLflow release in ``venv`` (the service's: the one that wrote the store), else this Python's.
    They differ during an upgrade, which backs up with the new release's tool the old release's store."""
    for site in sorted(glob.glob(os.path.join(venv, "lib", "python*", "site-packages"))) if venv else []:
        for dist in importlib.metadata.distributions(path=[site], name="mlflow"):
            return dist.version
    return importlib.metadata.version("mlflow")


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def add_artifacts(artifacts_dir, tar_path):
    """The local artifacts, as one tar with paths relative to the artifacts directory. Artifacts are
    written once and never changed by MLflow, so a copy taken while it serves is consistent."""
    with tarfile.open(tar_path, "w") as tar:
        for name in sorted(os.listdir(artifacts_dir)):
            tar.add(os.path.join(artifacts_dir, name), arcname=name)


def safe_members(tar):
    """Regular files and directories inside the target only: no links, devices, absolute or .. paths."""
    for member in tar.getmembers():
        parts = member.name.split("/")
        if member.name.startswith("/") or ".." in parts or not (member.isfile() or member.isdir()):
            raise Refused([f"{tar.name} holds {member.name!r}, which is not a plain file inside the artifacts"])
    return tar.getmembers()


def artifacts_record(artifacts_uri, copied):
    """What a manifest says of the artifacts: where they are, whether the backup holds them, and why not.
    Artifacts in an object store (a URI such as s3://bucket/path) stay there: the store keeps them, and
    copying a bucket is the store's own business (versioning, replication), not a database backup's."""
    if copied:
        return {"location": artifacts_uri, "copied": True, "note": "in artifacts.tar"}
    if artifacts_uri and "://" in artifacts_uri and not artifacts_uri.startswith("file://"):
        return {"location": artifacts_uri, "copied": False,
                "note": "not copied: they live in an object store, which keeps them (back it up by its own means)"}
    return {"location": artifacts_uri, "copied": False,
            "note": "not copied: a backup of the store only, or no artifacts directory yet"}


def backup(url, uri, label, backup_dir, auth_url=None, artifacts_dir=None, keep=None, service_venv=None,
           artifacts_uri=None):
    """A backup directory <backup_dir>/mlflow-LABEL-<UTC time>: the store (store.db, SQLite's online
    backup, or store.dump, pg_dump -Fc), a separate SQLite auth database (auth.db), the local artifacts
    (artifacts.tar) when ``artifacts_dir`` is given, and manifest.json (MLflow's version, the schema
    revision, each file's size and SHA-256, and where the artifacts are, ``artifacts_uri`` or
    ``artifacts_dir``, with whether the backup holds them). Written as <name>.partial and renamed when
    whole; then only the newest ``keep`` backups of this label are kept. Returns its path, or "none"
    without a store."""
    if url.get_backend_name() == "sqlite" and (not url.database or not os.path.exists(url.database)):
        return "none"
    now = datetime.datetime.now(datetime.timezone.utc)
    path = os.path.join(backup_dir, f"mlflow-{label}-{now.strftime('%Y%m%dT%H%M%SZ')}")
    work = path + ".partial"
    shutil.rmtree(work, ignore_errors=True)  # a run killed within this second
    os.makedirs(work, mode=0o750)
    schema = revision(url, uri)
    if url.get_backend_name() == "sqlite":
        sqlite_copy(url.database, os.path.join(work, "store.db"))
    else:
        subprocess.run(["pg_dump", "--format=custom", "--file", os.path.join(work, "store.dump")],
                       env=postgres_env(url), check=True)
    auth_db = separate_sqlite(auth_url, url)
    if auth_db and os.path.exists(auth_db):
        sqlite_copy(auth_db, os.path.join(work, "auth.db"))
    if artifacts_dir and os.path.isdir(artifacts_dir):
        add_artifacts(artifacts_dir, os.path.join(work, "artifacts.tar"))
    files = {name: {"bytes": os.path.getsize(os.path.join(work, name)), "sha256": sha256_of(os.path.join(work, name))}
             for name in sorted(os.listdir(work))}
    manifest = {
        "format": FORMAT, "label": label, "created": now.isoformat(timespec="seconds"),
        "created_unix": int(now.timestamp()), "host": socket.getfqdn(),
        "mlflow_version": mlflow_version(service_venv), "backend": url.get_backend_name(),
        "revision": schema, "files": files,
    }
    if artifacts_uri or artifacts_dir:
        manifest["artifacts"] = artifacts_record(artifacts_uri or artifacts_dir, "artifacts.tar" in files)
    with open(os.path.join(work, MANIFEST), "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
    os.replace(work, path)
    if keep:
        for old in complete_backups(backup_dir, label)[:-keep]:
            shutil.rmtree(old)
    return path


def complete_backups(backup_dir, label=None):
    """Whole backups (a manifest, no .partial), oldest first; of one label when given."""
    prefix = f"mlflow-{label}-" if label else "mlflow-"
    names = sorted(name for name in os.listdir(backup_dir)
                   if name.startswith(prefix) and not name.endswith(".partial")
                   and os.path.exists(os.path.join(backup_dir, name, MANIFEST)))
    if label is None:  # by time, whatever the label
        names.sort(key=lambda name: name.rsplit("-", 1)[-1])
    return [os.path.join(backup_dir, name) for name in names]


def read_manifest(path):
    try:
        with open(os.path.join(path, MANIFEST), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise Refused([f"{path} is not a backup of this tool: {error}"]) from None


def check_backup(path, known_revision):
    """The backup's manifest, after checking every file's checksum and that the installed MLflow knows
    its schema (``known_revision(rev)``: "current", "older", or None for a revision it does not know,
    a newer MLflow's). Raises Refused naming each problem."""
    manifest = read_manifest(path)
    problems = []
    if manifest.get("format") != FORMAT:
        problems.append(f"{path}: format {manifest.get('format')!r}, this tool reads {FORMAT}")
    for name, facts in sorted(manifest.get("files", {}).items()):
        file = os.path.join(path, name)
        if not os.path.isfile(file):
            problems.append(f"{file} is missing")
        elif sha256_of(file) != facts["sha256"]:
            problems.append(f"{file}: checksum differs from the manifest's (damaged or changed)")
    store = [name for name in manifest.get("files", {}) if name.startswith("store.")]
    if len(store) != 1:
        problems.append(f"{path} holds no store (store.db or store.dump)")
    if manifest.get("revision") not in (None, "none") and known_revision(manifest["revision"]) is None:
        problems.append(f"{path} has schema revision {manifest['revision']} (MLflow {manifest.get('mlflow_version')}), "
                        f"which the installed MLflow {mlflow_version()} does not know: "
                        "install that release or a newer one first")
    if problems:
        raise Refused(problems)
    return manifest


def known_revision(uri):
    """A function telling whether the installed MLflow's migrations know a schema revision."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError
    from mlflow.store.db.utils import _get_alembic_config

    scripts = ScriptDirectory.from_config(_get_alembic_config(uri))

    def known(rev):
        try:
            if scripts.get_revision(rev) is None:
                return None
        except CommandError:
            return None
        return "current" if rev == scripts.get_current_head() else "older"
    return known


def restore(url, uri, path, backup_dir, auth_url=None, artifacts_dir=None, artifacts_uri=None):
    """Put a checked backup back in place of the store (stop the service first), with its auth database
    and artifacts when it has them. What it replaces is first kept aside as a backup labelled
    before-restore. Returns what was done; the schema is migrated separately (``upgrade``)."""
    manifest = check_backup(path, known_revision(uri))
    files = manifest["files"]
    tar = os.path.join(path, "artifacts.tar")
    if "artifacts.tar" in files:
        with tarfile.open(tar) as archive:
            safe_members(archive)
    aside = backup(url, uri, "before-restore", backup_dir, auth_url,
                   artifacts_dir if "artifacts.tar" in files else None, artifacts_uri=artifacts_uri)
    if "store.db" in files:
        if url.get_backend_name() != "sqlite":
            raise Refused([f"{path} holds a SQLite store; this service's store is {url.get_backend_name()}"])
        sqlite_copy(os.path.join(path, "store.db"), url.database)
    else:
        if url.get_backend_name() == "sqlite":
            raise Refused([f"{path} holds a PostgreSQL dump; this service's store is SQLite"])
        subprocess.run(["pg_restore", "--clean", "--if-exists", "--single-transaction",
                        "--exit-on-error", "--no-owner", "--dbname", url.database, os.path.join(path, "store.dump")],
                       env=postgres_env(url), check=True)
    auth_db = separate_sqlite(auth_url, url)
    if auth_db and "auth.db" in files:
        sqlite_copy(os.path.join(path, "auth.db"), auth_db)
    if artifacts_dir and "artifacts.tar" in files:
        for name in os.listdir(artifacts_dir):  # kept aside above
            target = os.path.join(artifacts_dir, name)
            shutil.rmtree(target) if os.path.isdir(target) and not os.path.islink(target) else os.remove(target)
        with tarfile.open(tar) as archive:
            archive.extractall(artifacts_dir, members=safe_members(archive))
    return {"restored": path, "kept_aside": aside, "revision": manifest["revision"],
            "parts": sorted(name.split(".")[0] for name in files), "artifacts": manifest.get("artifacts")}


def newest(backup_dir, textfile=None, max_age=None):
    """The newest whole backup (any label): path, created and age; with ``textfile``, also written there
    for node exporter's textfile collector (atomically: the collector may read at any moment)."""
    backups = complete_backups(backup_dir) if os.path.isdir(backup_dir) else []
    found = read_manifest(backups[-1]) if backups else {}
    now = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    result = {"path": backups[-1] if backups else None, "created": found.get("created"),
              "age_seconds": now - found["created_unix"] if found else None}
    if textfile and os.path.isdir(os.path.dirname(textfile)):
        lines = [
            "# HELP mlflow_globus_backup_last_success_timestamp_seconds When the newest whole backup was taken (0: none).",
            "# TYPE mlflow_globus_backup_last_success_timestamp_seconds gauge",
            f"mlflow_globus_backup_last_success_timestamp_seconds {found.get('created_unix', 0)}",
            "# HELP mlflow_globus_backup_max_age_seconds The age the newest backup may reach (the schedule's).",
            "# TYPE mlflow_globus_backup_max_age_seconds gauge",
            f"mlflow_globus_backup_max_age_seconds {int(max_age or 0)}",
            "# HELP mlflow_globus_backup_size_bytes The newest backup's size.",
            "# TYPE mlflow_globus_backup_size_bytes gauge",
            f"mlflow_globus_backup_size_bytes {sum(f['bytes'] for f in found.get('files', {}).values())}",
        ]
        with open(textfile + ".tmp", "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        os.chmod(textfile + ".tmp", 0o644)
        os.replace(textfile + ".tmp", textfile)
    return result


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
    parser.add_argument("action", choices=["backup", "restore", "check", "newest", "revision", "upgrade", "permissions"])
    parser.add_argument("argument", nargs="?", help="backup: a label; restore, check: the backup's path")
    parser.add_argument("--keep", type=int, help="backup: keep only this many of the label's newest backups")
    parser.add_argument("--store-only", action="store_true", help="backup: without the artifacts")
    args = parser.parse_args()
    if args.action in ("backup", "restore", "check") and not args.argument:
        parser.error(f"{args.action} needs {'a label' if args.action == 'backup' else 'a path'}")

    settings = read_settings()
    if args.action == "newest":  # as root: the textfile collector's directory is root's
        print(json.dumps(newest(settings["backup_dir"], settings.get("metrics_textfile"),
                                settings.get("backup_max_age_seconds"))))
        return 0

    from sqlalchemy.engine import make_url

    uri = read_env_file(settings["env_file"])["MLFLOW_BACKEND_STORE_URI"]
    url = make_url(uri)
    auth_uri = read_auth_uri(settings.get("auth_config"))
    auth_url = make_url(auth_uri) if auth_uri else None
    artifacts_dir = settings.get("artifacts_dir") or None
    if auth_uri:  # MLflow's auth package reads its settings when it is imported
        os.environ["MLFLOW_AUTH_CONFIG_PATH"] = settings["auth_config"]
    become_service_user(settings["service_user"])
    try:
        if args.action == "backup":
            print(backup(url, uri, args.argument, settings["backup_dir"], auth_url,
                         None if args.store_only else artifacts_dir, args.keep, settings.get("service_venv"),
                         settings.get("artifacts_uri") or None))
        elif args.action == "restore":
            print(json.dumps(restore(url, uri, args.argument, settings["backup_dir"], auth_url, artifacts_dir,
                                     settings.get("artifacts_uri") or None)))
        elif args.action == "check":
            manifest = check_backup(args.argument, known_revision(uri))
            print(json.dumps(dict(manifest, schema=known_revision(uri)(manifest["revision"])
                                  if manifest["revision"] != "none" else "none")))
        elif args.action == "revision":
            print(revision(url, uri))
        elif args.action == "permissions":
            if not auth_uri:
                raise SystemExit("MLflow's auth app is off (mlflow_globus_identity): there are no permissions to set")
            request = json.load(sys.stdin)
            print(json.dumps(set_permissions(PermissionStores(auth_uri, uri), request["grants"],
                                             set(request["known_users"]), request["check"])))
        else:
            print(upgrade(uri, auth_uri))
    except Refused as refused:
        print(json.dumps({"refused": refused.problems}))
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
