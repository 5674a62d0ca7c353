"""CSV exports as people actually have them: each case is a file and what reading it gives.

Every case writes its own bytes, reads them through `read_csv_exports` with the options a plan
would declare (or `auto`), and asserts the exact loaded rows, quarantine reasons or error.
"""

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kpi_pipeline.plan.csv_config import CsvSource
from kpi_pipeline.sources.csv_export import CsvFormatError, read_csv_exports

FIRST, LAST = dt.date(2026, 1, 1), dt.date(2026, 1, 31)
EN = "date,source,medium,campaign,landing_page,device,sessions,engaged_sessions,key_events"


@dataclass
class Case:
    files: dict[str, bytes]
    options: dict = field(default_factory=dict)
    # (date, source, landing_page, sessions, engaged_sessions, key_events, line)
    loaded: list[tuple] = field(default_factory=list)
    # (line, column_name, reason)
    quarantined: list[tuple] = field(default_factory=list)
    error: str | None = None


def _rows(extract) -> list[tuple]:
    frame = extract.traffic
    return [
        (d.date(), s, p, n, e, k, line)
        for d, s, p, n, e, k, line in frame[
            [
                "date",
                "source",
                "landing_page",
                "sessions",
                "engaged_sessions",
                "key_events",
                "line",
            ]
        ].itertuples(index=False, name=None)
    ]


J5 = dt.date(2026, 1, 5)
J6 = dt.date(2026, 1, 6)

CASES = [
    # A BOM from Excel's "CSV UTF-8" must not glue itself to the first header.
    pytest.param(
        Case(
            {
                "a.csv": b"\xef\xbb\xbf"
                + EN.encode()
                + b"\n2026-01-05,google,cpc,x,/,mobile,10,5,1\n"
            },
            loaded=[(J5, "google", "/", 10, 5, 1.0, 2)],
        ),
        id="utf8-bom",
    ),
    # Excel on Windows writes Windows-1252: `auto` must read "é" rather than quarantine it.
    pytest.param(
        Case(
            {"a.csv": (EN + "\n2026-01-05,google,cpc,x,/café,mobile,10,5,1\n").encode("cp1252")},
            options={"encoding": "auto"},
            loaded=[(J5, "google", "/café", 10, 5, 1.0, 2)],
        ),
        id="windows-1252-auto",
    ),
    # Declared Latin-1 is honoured as declared.
    pytest.param(
        Case(
            {"a.csv": (EN + "\n2026-01-05,google,cpc,x,/señal,mobile,10,5,1\n").encode("latin-1")},
            options={"encoding": "latin-1"},
            loaded=[(J5, "google", "/señal", 10, 5, 1.0, 2)],
        ),
        id="latin-1-declared",
    ),
    # A UTF-8 file with one corrupt byte keeps its good rows; the bad one is quarantined.
    pytest.param(
        Case(
            {
                "a.csv": EN.encode()
                + b"\n2026-01-05,google,cpc,x,/\xff,mobile,10,5,1"
                + b"\n2026-01-06,bing,cpc,x,/,mobile,4,2,0\n"
            },
            loaded=[(J6, "bing", "/", 4, 2, 0.0, 3)],
            quarantined=[(2, "raw_text", "undecodable bytes for encoding utf-8")],
        ),
        id="utf8-corrupt-byte",
    ),
    # European exports: ";" between fields and "," as the decimal mark, both detected.
    pytest.param(
        Case(
            {
                "a.csv": EN.replace(",", ";").encode()
                + b"\n2026-01-05;google;cpc;x;/;mobile;10;5;3,5\n"
            },
            options={"decimal": "auto"},
            loaded=[(J5, "google", "/", 10, 5, 3.5, 2)],
        ),
        id="semicolon-decimal-comma",
    ),
    # Tab-separated "CSV" (GA4 UI's TSV download) is detected from the header.
    pytest.param(
        Case(
            {
                "a.csv": EN.replace(",", "\t").encode()
                + b"\n2026-01-05\tgoogle\tcpc\tx\t/\tmobile\t10\t5\t1\n"
            },
            loaded=[(J5, "google", "/", 10, 5, 1.0, 2)],
        ),
        id="tab-separated",
    ),
    # Pipes appear in exports from BI tools.
    pytest.param(
        Case(
            {
                "a.csv": EN.replace(",", "|").encode()
                + b"\n2026-01-05|google|cpc|x|/|mobile|10|5|1\n"
            },
            loaded=[(J5, "google", "/", 10, 5, 1.0, 2)],
        ),
        id="pipe-separated",
    ),
    # A French GA4 interface exports French headers; they map without configuration.
    pytest.param(
        Case(
            {
                "a.csv": (
                    "Date;Source de la session;Support de la session;Campagne de la session;"
                    "Page de destination;Catégorie d'appareil;Sessions;Sessions avec engagement;"
                    "Événements clés\n05/01/2026;google;cpc;x;/;mobile;1\u202f234;600;12,5\n"
                ).encode(),
                # French digit grouping uses a narrow no-break space in GA4 exports.
            },
            options={"decimal": "auto"},
            loaded=[(J5, "google", "/", 1234, 600, 12.5, 2)],
        ),
        id="french-headers-dmy-dates",
    ),
    # English GA4 UI headers, any case and spacing.
    pytest.param(
        Case(
            {
                "a.csv": (
                    b"Date,Session source,Session medium,Session campaign,Landing page,"
                    b"DEVICE  CATEGORY,Sessions,Engaged sessions,Key events\n"
                    b"20260105,google,cpc,x,/,mobile,10,5,1\n"
                )
            },
            loaded=[(J5, "google", "/", 10, 5, 1.0, 2)],
        ),
        id="english-ui-headers-yyyymmdd",
    ),
    # GA4 UI exports open with "#" comment lines; line numbers must still be the file's own.
    pytest.param(
        Case(
            {
                "a.csv": (
                    "# ----------------------------------------\n"
                    "# Traffic acquisition: Session source / medium\n"
                    "# Account: Northwind\n"
                    "# Start date: 20260101\n"
                    "# ----------------------------------------\n"
                    "\n" + EN + "\n2026-01-05,google,cpc,x,/,mobile,10,5,1\n"
                    "2026-01-06,google,cpc,x,/,mobile,n/a,5,1\n"
                ).encode()
            },
            loaded=[(J5, "google", "/", 10, 5, 1.0, 8)],
            quarantined=[(9, "sessions", "not a number: 'n/a'")],
        ),
        id="ga4-ui-comment-header",
    ),
    # A second "#" section after the data is another table, not bad rows.
    pytest.param(
        Case(
            {
                "a.csv": (
                    EN + "\n2026-01-05,google,cpc,x,/,mobile,10,5,1\n\n"
                    "# ----------------------------------------\n"
                    "Device category,Users\nmobile,7\n"
                ).encode()
            },
            loaded=[(J5, "google", "/", 10, 5, 1.0, 2)],
        ),
        id="second-section-ignored",
    ),
    # "Grand total" rows are the UI's sums: loading them would double every number.
    pytest.param(
        Case(
            {
                "a.csv": (
                    EN + "\nGrand total,,,,,,10,5,1\n2026-01-05,google,cpc,x,/,mobile,10,5,1\n"
                ).encode()
            },
            loaded=[(J5, "google", "/", 10, 5, 1.0, 3)],
        ),
        id="grand-total-row-skipped",
    ),
    # Declared thousands "." and decimal "," (German style).
    pytest.param(
        Case(
            {
                "a.csv": EN.replace(",", ";").encode()
                + b"\n05.01.2026;google;cpc;x;/;mobile;1.234;1.000;2,25\n"
            },
            options={"delimiter": ";", "decimal": ",", "thousands": "."},
            loaded=[(J5, "google", "/", 1234, 1000, 2.25, 2)],
        ),
        id="german-thousands-and-decimal",
    ),
    # Declared thousands "," with quoted numbers, as US spreadsheets write them.
    pytest.param(
        Case(
            {"a.csv": (EN + '\n2026-01-05,google,cpc,x,/,mobile,"12,345","6,000",7\n').encode()},
            options={"thousands": ","},
            loaded=[(J5, "google", "/", 12345, 6000, 7.0, 2)],
        ),
        id="us-thousands-quoted",
    ),
    # A delimiter inside a quoted landing page stays part of the field.
    pytest.param(
        Case(
            {"a.csv": (EN + '\n2026-01-05,google,cpc,x,"/a,b",mobile,10,5,1\n').encode()},
            loaded=[(J5, "google", "/a,b", 10, 5, 1.0, 2)],
        ),
        id="quoted-delimiter",
    ),
    # CRLF line endings and blank lines do not shift line numbers.
    pytest.param(
        Case(
            {
                "a.csv": (
                    EN + "\r\n\r\n2026-01-05,google,cpc,x,/,mobile,10,5,1\r\n   \r\n"
                    "2026-01-06,google,cpc,x,/,mobile,-1,5,1\r\n"
                ).encode()
            },
            loaded=[(J5, "google", "/", 10, 5, 1.0, 3)],
            quarantined=[(5, "sessions", "negative count: '-1'")],
        ),
        id="crlf-and-blank-lines",
    ),
    # A header that matches no mapping fails the file, listing what was expected and found.
    pytest.param(
        Case(
            {"a.csv": b"day,src,med,camp,page,dev,visits,engaged,purchases\n"},
            error=(
                "missing date (one of: date, jour); source (one of: source, session_source, "
                "session source, source de la session)"
            ),
        ),
        id="header-mismatch",
    ),
    # Zero bytes and comment-only files are empty exports, not errors.
    pytest.param(Case({"a.csv": b"", "b.csv": b"# nothing exported\n\n"}), id="empty-files"),
    # Two files with different habits in one glob: each file's format is detected on its own.
    pytest.param(
        Case(
            {
                "a.csv": (EN + "\n2026-01-05,google,cpc,x,/,mobile,10,5,1\n").encode(),
                "b.csv": EN.replace(",", ";").encode()
                + b"\n06/01/2026;bing;cpc;x;/;mobile;4;2;0,5\n",
            },
            options={"decimal": "auto"},
            loaded=[(J5, "google", "/", 10, 5, 1.0, 2), (J6, "bing", "/", 4, 2, 0.5, 2)],
        ),
        id="mixed-formats-per-file",
    ),
    # The same day re-exported with other bytes: the later row is a duplicate, not extra traffic.
    pytest.param(
        Case(
            {
                "a.csv": (EN + "\n2026-01-05,google,cpc,x,/,mobile,10,5,1\n").encode(),
                "b.csv": (EN + "\r\n2026-01-05,google,cpc,x,/,mobile,11,5,1\r\n").encode(),
            },
            loaded=[(J5, "google", "/", 10, 5, 1.0, 2)],
            quarantined=[(2, None, "duplicate of the row at {a}:2")],
        ),
        id="overlapping-re-export",
    ),
    # An explicitly declared date format that does not fit is reported per row, with the format.
    pytest.param(
        Case(
            {"a.csv": (EN + "\n05/01/2026,google,cpc,x,/,mobile,10,5,1\n").encode()},
            options={"date_format": "%Y-%m-%d"},
            quarantined=[(2, "date", "cannot read date '05/01/2026' with format %Y-%m-%d")],
        ),
        id="declared-date-format-mismatch",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_messy_export(tmp_path: Path, case: Case) -> None:
    for name, data in case.files.items():
        (tmp_path / name).write_bytes(data)
    source = CsvSource(id="ga4", path="*.csv", **case.options)
    if case.error:
        with pytest.raises(CsvFormatError) as caught:
            read_csv_exports(source, tmp_path, FIRST, LAST)
        assert case.error in str(caught.value)
        assert f"{(tmp_path / 'a.csv').resolve()}:1: the header does not match" in str(caught.value)
        return
    extract = read_csv_exports(source, tmp_path, FIRST, LAST)
    assert _rows(extract) == case.loaded
    files = {Path(name).stem: str((tmp_path / name).resolve()) for name in case.files}
    quarantined = [
        (line, None if col is None or col != col else col, reason)
        for line, col, reason in extract.quarantine[["line", "column_name", "reason"]].itertuples(
            index=False, name=None
        )
    ]
    expected = [(line, col, reason.format(**files)) for line, col, reason in case.quarantined]
    assert quarantined == expected


def test_a_re_delivered_file_is_read_once(tmp_path: Path) -> None:
    # The same export dropped twice under two names must not double the day's sessions.
    data = (EN + "\n2026-01-05,google,cpc,x,/,mobile,10,5,1\n").encode()
    (tmp_path / "export.csv").write_bytes(data)
    (tmp_path / "export (1).csv").write_bytes(data)
    extract = read_csv_exports(CsvSource(id="ga4", path="*.csv"), tmp_path, FIRST, LAST)
    assert extract.traffic["sessions"].tolist() == [10]
    assert extract.quarantine.empty
    assert extract.skipped_duplicate_files == (str((tmp_path / "export.csv").resolve()),)


def test_detected_formats_are_reported(tmp_path: Path) -> None:
    # What detection decided is visible, so a surprising number can be traced to its cause.
    (tmp_path / "a.csv").write_bytes(
        EN.replace(",", ";").encode("cp1252")
        + "\n05/01/2026;google;cpc;x;/é;mobile;10;5;1,5\n".encode("cp1252")
    )
    source = CsvSource(id="ga4", path="*.csv", encoding="auto", decimal="auto")
    (file_format,) = read_csv_exports(source, tmp_path, FIRST, LAST).formats
    assert (file_format.encoding, file_format.delimiter, file_format.decimal) == (
        "cp1252",
        ";",
        ",",
    )
    assert (file_format.date_format, file_format.header_line) == ("%d/%m/%Y", 1)
    assert file_format.headers["engaged_sessions"] == "engaged_sessions"
