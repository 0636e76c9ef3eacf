"""Flask-Migrate on a host app that uses the extension: init, migrate, upgrade, migrate.

The commands run as the host would run them, through ``python -m flask`` in a fresh
process, on SQLite always and on PostgreSQL when ``SDKAUTH_TEST_DATABASE_URL`` is
set. On PostgreSQL the host's tables (and ``alembic_version``) live in a schema of
their own, created before and dropped after, so that autogenerate sees no other
table of the shared database and the test leaves nothing behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from flask_sdkauth.migrations import render_item
from flask_sdkauth.tables import UTCDateTime

from .conftest import BACKENDS

HOST_APP = textwrap.dedent(
    """
    import os

    import sqlalchemy as sa
    from flask import Flask
    from flask_jwt_extended import JWTManager
    from flask_migrate import Migrate
    from flask_sqlalchemy import SQLAlchemy

    from flask_sdkauth import Channel, SdkAuth
    from flask_sdkauth.migrations import render_item

    db = SQLAlchemy()
    migrate = Migrate()
    sdkauth = SdkAuth(db=db)


    class Note(db.Model):
        __tablename__ = "host_note"
        id = db.Column(db.Integer, primary_key=True)
        text = db.Column(db.String(100), nullable=False)


    def create_app():
        app = Flask(__name__)
        app.config.update(
            SECRET_KEY="migration-test-secret-key-of-enough-length",
            SQLALCHEMY_DATABASE_URI=os.environ["HOST_DATABASE_URL"],
        )
        db.init_app(app)
        JWTManager(app)
        sdkauth.init_app(app)
        migrate.init_app(app, db, render_item=render_item)

        @app.cli.command("roundtrip")
        def roundtrip():
            widget = sdkauth.create_widget("Demo", [Channel("sms")])
            table = sdkauth.tables.widget
            created_at = db.session.execute(
                sa.select(table.c.created_at).where(table.c.id == widget.id)
            ).scalar_one()
            print("offset", created_at.utcoffset())

        return app
    """
)


def _postgresql_url_in_schema(url: str, schema: str) -> str:
    with_path = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return with_path.render_as_string(hide_password=False)


@pytest.fixture(params=sorted(BACKENDS))
def host_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The host app's database: a file for SQLite, a fresh schema for PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'host.db'}"
        return
    schema = f"sdkauth_migrations_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(BACKENDS[request.param])

    def drop_schema() -> None:
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))

    try:
        drop_schema()
        with engine.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        yield _postgresql_url_in_schema(BACKENDS[request.param], schema)
    finally:
        drop_schema()
        engine.dispose()


def _flask(folder: Path, database_url: str, *args: str) -> str:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLASK_")}
    env["HOST_DATABASE_URL"] = database_url
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "hostapp", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"flask {' '.join(args)} failed:\n{output}"
    return output


def _revisions(folder: Path) -> list[Path]:
    return sorted((folder / "migrations" / "versions").glob("*.py"))


def _tables(database_url: str) -> set[str]:
    engine = sa.create_engine(database_url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_flask_migrate_creates_the_tables_and_then_finds_no_change(
    tmp_path: Path, host_database_url: str
) -> None:
    (tmp_path / "hostapp.py").write_text(HOST_APP, "utf-8")

    _flask(tmp_path, host_database_url, "db", "init")
    _flask(tmp_path, host_database_url, "db", "migrate", "-m", "initial")
    [revision] = _revisions(tmp_path)
    source = revision.read_text("utf-8")
    assert "op.create_table('sdkauth_session'" in source
    assert "op.create_table('sdkauth_widget'" in source
    assert "sa.Column('launched_at', sa.DateTime(), nullable=True)" in source
    # The migration runs without the package: nothing of it is written into the file.
    assert "flask_sdkauth" not in source and "UTCDateTime" not in source

    _flask(tmp_path, host_database_url, "db", "upgrade")
    assert {"sdkauth_session", "sdkauth_widget", "host_note", "alembic_version"} <= _tables(
        host_database_url
    )

    # The tables the migration created are the ones the metadata describes.
    output = _flask(tmp_path, host_database_url, "db", "migrate", "-m", "nothing")
    assert "No changes in schema detected." in output
    assert _revisions(tmp_path) == [revision]

    # The extension works on them, with aware UTC datetimes.
    assert "offset 0:00:00" in _flask(tmp_path, host_database_url, "roundtrip")

    _flask(tmp_path, host_database_url, "db", "downgrade", "base")
    assert _tables(host_database_url) <= {"alembic_version"}


def _autogen_context(**opts: Any) -> Any:
    return SimpleNamespace(opts={"sqlalchemy_module_prefix": "sa.", **opts})


def test_render_item_renders_utc_datetime_as_the_stored_type() -> None:
    assert render_item("type", UTCDateTime(), _autogen_context()) == "sa.DateTime()"
    assert (
        render_item("type", UTCDateTime(), _autogen_context(sqlalchemy_module_prefix="sqla."))
        == "sqla.DateTime()"
    )


def test_render_item_leaves_everything_else_to_alembic() -> None:
    context = _autogen_context()
    assert render_item("type", sa.DateTime(), context) is False
    assert render_item("type", sa.Uuid(), context) is False
    assert render_item("column", sa.Column("at", UTCDateTime), context) is False
