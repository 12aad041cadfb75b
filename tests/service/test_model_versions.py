"""Model versions: the newest that loads and passes the probe is served; the others are skipped, and say why."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
from service_testing import COOL, wait_for

from colorizer_core import contract

TOO_BRIGHT = (2.0, 2.0, 2.0)  # a model whose colours leave [0, 1]: loads fine, fails the probe


def remove_variables(version_dir: Path) -> None:
    """What a copy in progress looks like: the graph and metadata are there, the weights not yet."""
    shutil.rmtree(version_dir / "variables")


def rewrite_metadata(version_dir: Path, **changes: object) -> None:
    """Change fields of a version's colorizer.json as a person or another tool might (``None`` removes one)."""
    path = version_dir / contract.METADATA_FILE
    document = json.loads(path.read_text()) | changes
    path.write_text(json.dumps({key: value for key, value in document.items() if value is not None}))


def skipped(client: httpx.Client) -> dict[int, str]:
    return {entry["version"]: entry["reason"] for entry in client.get("/v1/model").json()["skipped"]}


def test_an_incomplete_newest_version_is_skipped_at_start_and_the_one_before_served(
    start_server: Callable, tmp_path: Path
) -> None:
    starting = start_server(versions=(1, 2))  # exported now, served once entered
    remove_variables(tmp_path / "models" / "colorizer" / "2")
    with starting as live, live.admin_client() as client:
        assert client.get("/readyz").json()["model_version"] == 1
        assert "incomplete" in skipped(client)[2]


def test_an_incomplete_version_is_tried_again_once_its_copy_is_done(start_server: Callable) -> None:
    with start_server(reload_interval_s=0.1) as live, live.admin_client() as client:
        version_dir = live.write_version(2, COOL)
        remove_variables(version_dir)
        wait_for(lambda: 2 in skipped(client), "version 2 to be seen incomplete")
        live.write_version(2, COOL)  # the copy finishes
        wait_for(lambda: client.get("/v1/model").json()["version"] == 2, "version 2 to be served")
        assert skipped(client) == {}


def test_a_version_that_fails_the_probe_is_never_served(start_server: Callable) -> None:
    with start_server() as live, live.admin_client() as client:
        live.write_version(2, TOO_BRIGHT)
        reloaded = client.post("/v1/model/reload").json()
        assert (reloaded["version"], reloaded["changed"]) == (1, False)
        assert "probe" in skipped(client)[2]


def test_a_version_whose_colorizer_json_does_not_validate_is_skipped_saying_why(start_server: Callable) -> None:
    with start_server() as live, live.admin_client() as client:
        rewrite_metadata(live.write_version(2, COOL), format_version=2)
        rewrite_metadata(live.write_version(3, COOL), size=None)
        reloaded = client.post("/v1/model/reload").json()
        assert (reloaded["version"], reloaded["changed"]) == (1, False)
        assert skipped(client) == {
            3: "colorizer.json is invalid: size: Field required",
            2: "colorizer.json is invalid: format_version 2 is not one this colorizer reads (1); "
            "was it exported by a newer one?",
        }


def test_with_no_version_that_works_the_service_is_not_ready_and_says_why(start_server: Callable) -> None:
    with start_server(versions=(), wait_until_ready=False) as live, live.admin_client() as client:
        live.write_version(1, TOO_BRIGHT)
        response = client.post("/v1/model/reload")
        assert (response.status_code, response.json()["error"]) == (503, "no_servable_model")
        assert "probe" in response.json()["detail"]
        assert client.get("/readyz").status_code == 503


def test_versions_are_tried_newest_first(start_server: Callable) -> None:
    with start_server() as live, live.admin_client() as client:
        live.write_version(2, COOL)
        live.write_version(3, TOO_BRIGHT)
        assert client.post("/v1/model/reload").json()["version"] == 2
        assert list(skipped(client)) == [3]


def test_the_contract_lists_folders_still_being_copied(tmp_path: Path) -> None:
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / contract.SAVED_MODEL_FILE).write_bytes(b"")
    assert contract.candidate_dirs(tmp_path) == [tmp_path / "7"]
    assert contract.missing_files(tmp_path / "7") == [contract.VARIABLES_INDEX_FILE, contract.METADATA_FILE]
