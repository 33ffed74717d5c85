"""Security: formula injection, output confinement, SQL identifiers, no pickle/eval, secrets, staff-only pages.

Existing tests this extends (listed in docs/reliability.md):
tests/load/test_excel.py::test_text_that_looks_like_a_formula_stays_text,
tests/load/test_paths.py (traversal, absolute paths, symlinks),
tests/warehouse/test_views.py (anonymous -> login, non-staff -> 403, quarantine CSV neutralised),
tests/warehouse/test_admin.py (admin staff-only).
"""

from __future__ import annotations

import ast
import math
import re
import runpy
from collections import Counter
from decimal import Decimal
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver

from dw_analytics.extract.sql import read_sql
from dw_analytics.load.excel import write_excel
from dw_analytics.load.exceptions import LoadValidationError, OutputPathError
from dw_analytics.load.models import write_model
from dw_analytics.load.parquet import publish_snapshot, write_parquet
from dw_analytics.sales.models import FonteExterna, Pedido
from tests.dbutil import ROOT, database_url

HOSTILE = 'x"; DROP TABLE sales_pedido; --'
RISKY_TEXT = ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "\n=1", '=HYPERLINK("http://evil")']


# -- Excel formula injection ---------------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True])
def test_formula_like_text_in_headers_object_and_category_columns_stays_text(output_dir, streaming):
    frame = pd.DataFrame(
        {
            "=cmd|' /C calc'!A0": RISKY_TEXT,
            "mixed": [*RISKY_TEXT[:-1], 42],  # an object column with a number among the text
            "category": pd.Categorical(RISKY_TEXT),
        }
    )
    chunks = [frame.iloc[:4], frame.iloc[4:]] if streaming else frame

    write_excel({"S": chunks}, "inj.xlsx", streaming=streaming)

    sheet = openpyxl.load_workbook(output_dir / "inj.xlsx")["S"]
    header = sheet.cell(row=1, column=1)
    assert header.data_type == "s" and header.value == "=cmd|' /C calc'!A0"
    cells = [[sheet.cell(row=r, column=c) for c in (1, 2, 3)] for r in range(2, len(RISKY_TEXT) + 2)]
    formulas = [c.coordinate for row in cells for c in row if c.data_type == "f"]
    assert formulas == []
    prefixed = [c.coordinate for row in cells for c in row if c.quotePrefix]
    assert len(prefixed) == 3 * len(RISKY_TEXT) - 1  # every cell but the 42
    assert (cells[-1][1].value, cells[-1][1].quotePrefix) == ("42", False)  # a mixed column is text
    assert [_unescape(row[0].value) for row in cells] == RISKY_TEXT


def _unescape(value: str) -> str:
    # openpyxl returns control characters as OOXML escapes (_x000D_).
    return re.sub(r"_x([0-9A-F]{4})_", lambda m: chr(int(m.group(1), 16)), value)


# -- output paths ---------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path):
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


def written_outside(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*"))


@pytest.mark.parametrize(
    "name", ["../escape.parquet", "a/../../escape.parquet", "/etc/escape.parquet", "~/escape.parquet"]
)
def test_every_writer_refuses_a_path_out_of_the_output_root(output_dir, outside, name):
    frame = pd.DataFrame({"x": [1]})
    with pytest.raises(OutputPathError, match="not inside the output root"):
        write_parquet(frame, name)
    with pytest.raises(OutputPathError, match="not inside the output root"):
        write_excel({"S": frame}, name.replace(".parquet", ".xlsx"))
    with pytest.raises(OutputPathError, match="not inside the output root"):
        publish_snapshot({"t": frame}, name.replace(".parquet", ""))
    assert not (output_dir.parent / "escape.parquet").exists()


def test_symlinks_are_not_followed_out_of_the_root_for_folders_targets_or_dangling_links(output_dir, outside):
    frame = pd.DataFrame({"x": [1]})
    (output_dir / "reports").symlink_to(outside, target_is_directory=True)
    (output_dir / "report.xlsx").symlink_to(outside / "report.xlsx")  # dangling: the target does not exist yet
    (output_dir / "snapshots").symlink_to(outside, target_is_directory=True)

    with pytest.raises(OutputPathError):
        write_parquet(frame, "reports/fact.parquet")
    with pytest.raises(OutputPathError):
        write_excel({"S": frame}, "report.xlsx")
    with pytest.raises(OutputPathError):
        publish_snapshot({"t": frame}, "snapshots/star")

    assert written_outside(outside) == []
    assert (output_dir / "report.xlsx").is_symlink()  # left alone, not replaced by a file


# -- SQL identifiers and values from data -------------------------------------------


def pedido_table_is_intact(expected_rows: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM sales_pedido")
        assert cursor.fetchone()[0] == expected_rows


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["append", "replace", "upsert"])
def test_a_hostile_column_name_reaches_write_model_only_as_an_error_message(mode):
    frame = pd.DataFrame(
        {"id_externo": ["a"], "valor": [Decimal("1.00")], "data": pd.to_datetime(["2026-01-01"]), HOSTILE: [1]}
    )

    with pytest.raises(LoadValidationError, match=re.escape(repr(HOSTILE))) as info:
        write_model(frame, FonteExterna, mode=mode, unique_fields=["id_externo"] if mode == "upsert" else None)

    assert info.value.column == HOSTILE
    pedido_table_is_intact(0)
    assert FonteExterna.objects.count() == 0


@pytest.mark.django_db
def test_hostile_text_values_are_stored_and_read_back_verbatim():
    values = [
        "'; DROP TABLE sales_pedido; --",
        HOSTILE,
        "Robert'); DELETE FROM sales_fonteexterna;--",
        "%s %(x)s ? :name",
    ]
    frame = pd.DataFrame(
        {"id_externo": values, "valor": [Decimal("1.00")] * 4, "data": pd.to_datetime(["2026-01-01"] * 4)}
    )
    write_model(frame, FonteExterna, mode="append")
    write_model(frame.assign(valor=[Decimal("2.00")] * 4), FonteExterna, mode="upsert", unique_fields=["id_externo"])

    stored = dict(FonteExterna.objects.values_list("id_externo", "valor"))
    assert stored == dict.fromkeys(values, Decimal("2.00"))
    pedido_table_is_intact(0)


@pytest.mark.django_db(transaction=True)
def test_read_sql_returns_a_hostile_column_name_as_data_and_binds_hostile_values():
    quoted = connection.ops.quote_name(HOSTILE.replace('"', '""'))  # the SQL way to escape a quote in a name
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE dw_reliability_hostile (id integer, {quoted} varchar(100))")
        cursor.execute("INSERT INTO dw_reliability_hostile VALUES (1, %s)", [HOSTILE])
    url = database_url().replace("postgres://", "postgresql+psycopg://", 1)
    try:
        frame = read_sql(url, "SELECT * FROM dw_reliability_hostile WHERE id = :id", params={"id": 1})
        chunks = list(
            read_sql(
                url,
                "SELECT * FROM dw_reliability_hostile WHERE " + quoted + " = :v",
                chunksize=5,
                params={"v": HOSTILE},
            )
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE dw_reliability_hostile")

    assert frame.columns.tolist() == ["id", HOSTILE]
    assert frame[HOSTILE].tolist() == [HOSTILE]
    assert [len(c) for c in chunks] == [1]
    # Loading that frame into a model: the hostile name is refused before any SQL.
    with pytest.raises(LoadValidationError, match="unknown column"):
        write_model(frame.rename(columns={"id": "id_externo"}), FonteExterna)
    pedido_table_is_intact(Pedido.objects.count())


@pytest.fixture
def odd_model(django_db_blocker):
    """A model whose table and column names need quoting (spaces, semicolons, SQL keywords)."""
    from django.db import models
    from django.test.utils import isolate_apps

    with isolate_apps("dw_analytics.sales"):

        class Odd(models.Model):
            key = models.CharField(max_length=40, unique=True, db_column="select; DROP TABLE sales_pedido; --")
            amount = models.DecimalField(max_digits=8, decimal_places=2, db_column="from where")

            class Meta:
                app_label = "sales"
                db_table = "dw reliability; odd table"

    with django_db_blocker.unblock(), connection.schema_editor() as editor:
        editor.create_model(Odd)
    yield Odd
    with django_db_blocker.unblock(), connection.schema_editor() as editor:
        editor.delete_model(Odd)


@pytest.mark.django_db(transaction=True)
def test_table_and_column_names_are_quoted_on_every_write_path(odd_model):
    frame = pd.DataFrame({"key": ["a", "b"], "amount": [Decimal("1.10"), Decimal("2.20")]})

    assert write_model(frame, odd_model, mode="append").n_inserted == 2
    changed = frame.assign(amount=[Decimal("1.10"), Decimal("9.99")])
    upsert = write_model(changed, odd_model, mode="upsert", unique_fields=["key"])
    replace = write_model(frame.head(1), odd_model, mode="replace")

    assert (upsert.n_inserted, upsert.n_updated, replace.n_deleted) == (0, 1, 2)
    assert list(odd_model.objects.values_list("key", "amount")) == [("a", Decimal("1.10"))]
    pedido_table_is_intact(0)


# -- no pickle / eval / unsafe YAML on data -------------------------------------------

PRODUCT_DIRS = ("dw_analytics", "transforms")
UNSAFE_CALLS = {
    "pickle.load": re.compile(r"\b(c?[pP]ickle|dill|cloudpickle)\.loads?\("),
    "marshal.load": re.compile(r"\bmarshal\.loads?\("),
    "shelve.open": re.compile(r"\bshelve\.open\("),
    "pandas.read_pickle": re.compile(r"\bread_pickle\("),
    "numpy allow_pickle": re.compile(r"allow_pickle\s*=\s*True"),
    "eval(": re.compile(r"(?<![\w.])eval\("),
    "exec(": re.compile(r"(?<![\w.])exec\("),
    "yaml.load without SafeLoader": re.compile(r"\byaml\.(load|load_all)\((?![^)]*SafeLoader)|\byaml\.unsafe_load"),
}
#: reviewed occurrences: the export job unpickles only bytes whose HMAC it verified first
KNOWN_FINDINGS = {("dw_analytics/jobs/export.py", "pickle.load")}


def unsafe_calls_in_product_code() -> list[tuple[str, str, int, str]]:
    found = []
    for folder in PRODUCT_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                code = line.split("#", 1)[0]
                for name, pattern in UNSAFE_CALLS.items():
                    if pattern.search(code):
                        found.append((relative, name, number, line.strip()))
    return found


def test_product_code_never_unpickles_evaluates_or_loads_unsafe_yaml():
    found = [f for f in unsafe_calls_in_product_code() if (f[0], f[1]) not in KNOWN_FINDINGS]
    assert found == []


@pytest.mark.django_db
def test_the_export_job_refuses_a_stored_query_it_did_not_sign():
    import pickle

    from dw_analytics.jobs.exceptions import JobError
    from dw_analytics.jobs.export import query_sign, query_unsign
    from dw_analytics.sales.models import Pedido

    query = Pedido.objects.filter(quantidade__gt=1).query
    assert str(query_unsign(query_sign(query))) == str(query)
    forged = b"\0" * 32 + pickle.dumps(query)
    with pytest.raises(JobError, match="not signed by this project"):
        query_unsign(forged)
    tampered = bytearray(query_sign(query))
    tampered[-3] ^= 1
    with pytest.raises(JobError, match="not signed"):
        query_unsign(bytes(tampered))


# -- secrets only from the environment -------------------------------------------------

SETTINGS = ROOT / "dw_analytics" / "settings.py"
DEV_FALLBACK_KEY = "dev-only-insecure-key-change-me"
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|API_KEY|PRIVATE", re.IGNORECASE)


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def secret_looking_literals(source: str) -> list[str]:
    """String literals that look like credentials: assigned to a secret name, a password in a URL, or random-looking."""
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if node.value is not None and any(SECRET_NAME.search(n) for n in names):
                found += [
                    c.value
                    for c in ast.walk(node.value)
                    if isinstance(c, ast.Constant) and isinstance(c.value, str) and c.value
                ]
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if re.search(r"://[^/\s:@]+:[^/\s@]+@", text):
                found.append(text)
            if re.fullmatch(r"[A-Za-z0-9+/=_\-!@#$%^&*()]{24,}", text) and _entropy(text) > 4.0:
                found.append(text)
    # os.environ.get("DJANGO_SECRET_KEY", <fallback>): the env var's name is not a secret.
    return sorted({f for f in found if not re.fullmatch(r"[A-Z][A-Z0-9_]*", f)})


def test_settings_hold_no_secret_literal_but_the_documented_dev_fallback():
    assert secret_looking_literals(SETTINGS.read_text(encoding="utf-8")) == [DEV_FALLBACK_KEY]


def test_the_secret_scanner_catches_what_it_should():
    sample = 'SECRET_KEY = "abc"\nDB = "postgres://u:hunter2@db/x"\nX = "k8Fq2ZrT9mWvLx4NpB7sYc3HdJ6gQe1U"\n'
    assert secret_looking_literals(sample) == ["abc", "k8Fq2ZrT9mWvLx4NpB7sYc3HdJ6gQe1U", "postgres://u:hunter2@db/x"]


def test_secret_key_comes_from_the_environment_and_debug_is_off_by_default(monkeypatch):
    for name in ("DJANGO_SECRET_KEY", "DJANGO_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    defaults = runpy.run_path(str(SETTINGS))
    assert (defaults["DEBUG"], defaults["SECRET_KEY"]) == (False, DEV_FALLBACK_KEY)

    monkeypatch.setenv("DJANGO_SECRET_KEY", "from-the-environment")
    monkeypatch.setenv("DJANGO_DEBUG", "yes")  # only "1" turns DEBUG on
    configured = runpy.run_path(str(SETTINGS))
    assert (configured["DEBUG"], configured["SECRET_KEY"]) == (False, "from-the-environment")


# -- every page but /health/ is staff-only ------------------------------------------------


def page_urls(patterns=None, prefix: str = "") -> list[str]:
    """A concrete URL for every non-admin route (parameters filled with 1 / 'nightly')."""
    urls = []
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if route.startswith("admin/"):
            continue  # tests/warehouse/test_admin.py::test_non_staff_users_cannot_open_the_admin
        if isinstance(entry, URLResolver):
            urls += page_urls(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            filled = re.sub(r"<int:\w+>", "1", route)
            filled = re.sub(r"<(?:str:|slug:)?\w+>", "nightly", filled)
            urls.append("/" + filled.lstrip("^").rstrip("$"))
    return urls


def refused(response) -> bool:
    return response.status_code == 403 or (
        response.status_code == 302 and response["Location"].startswith("/admin/login/")
    )


@pytest.mark.django_db
def test_every_page_except_health_needs_a_staff_login(client):
    urls = [u for u in page_urls() if u != "/health/"]
    assert "/runs/" in urls

    anonymous = {u: client.get(u) for u in urls}
    assert {u: r.status_code for u, r in anonymous.items() if r.status_code != 302} == {}
    assert all(r["Location"].startswith("/admin/login/") for r in anonymous.values())

    user = get_user_model().objects.create_user("plain", password="pw", is_staff=False)
    client.force_login(user)
    # Refused: 403 (the run pages) or back to the login page (admin's staff_member_required).
    answers = {u: client.get(u) for u in urls}
    assert {u: r.status_code for u, r in answers.items() if not refused(r)} == {}
    assert client.get("/health/").status_code in (200, 503)
