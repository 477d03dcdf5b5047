"""Team demos on one server: who may act, and the quotas that keep the machine usable.

Pure decisions first (no Streamlit session), then the pages driven by AppTest as a viewer, as the owner
(with the token in the address) and with a crafted request for an action a viewer's page never drew.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image
from streamlit import config
from streamlit.proto.WidgetStates_pb2 import WidgetStates
from streamlit.testing.v1 import AppTest

from support import REPO
from explorer.data import datasets, uploads
from pages.ui import roles
from pages.ui.quotas import GIB, MIB, Quotas, build_bytes, builds_refusal, disk_refusal, search_minutes_refusal, used_bytes

APP = str(REPO / "app.py")
TOKEN = "owner-token-for-the-tests-0123456789abcdefghijklmnop"


def test_only_a_loopback_server_or_the_owner_token_makes_an_owner():
    assert roles.decide("127.0.0.1", False, False).owner and roles.decide("localhost", False, False).owner
    assert roles.decide("::1", False, False).owner
    for address in ("0.0.0.0", "", None, "192.168.1.20", "::"):
        assert roles.decide(address, False, False).role == roles.VIEWER
        assert roles.decide(address, False, True).owner
        member = roles.decide(address, True, False)
        assert member.role == roles.MEMBER and member.can_act and not member.owner


def test_a_wrong_an_empty_and_a_10_kB_token_are_refused():
    assert roles.token_matches(TOKEN, TOKEN)
    for presented in ("", None, TOKEN[:-1], TOKEN + "x", TOKEN.upper(), "x" * 10_240, TOKEN * 200):
        assert not roles.token_matches(TOKEN, presented)
    assert not roles.token_matches("", "")  # a server without a token never matches


def test_each_quota_refuses_with_a_message_that_says_what_is_left(tmp_path):
    q = Quotas(queued_builds=3, disk_bytes=10 * MIB, member_search_minutes=10)
    assert builds_refusal(2, 1, q) is None
    assert "at most 3 at once" in builds_refusal(3, 1, q) and "You already have 3 builds" in builds_refusal(3, 1, q)
    assert "You already have 1 build " in builds_refusal(1, 3, q)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "blob").write_bytes(b"\0" * (7 * MIB))
    (tmp_path / "b.bin").write_bytes(b"\0" * MIB)
    used = used_bytes(tmp_path)
    assert used == 8 * MIB
    assert disk_refusal(2 * MIB, used, q, "This upload") is None
    message = disk_refusal(3 * MIB, used, q, "This upload")
    assert message.startswith("This upload would take about 3 MiB") and "(10 MiB) has 2 MiB left" in message
    assert search_minutes_refusal(10, False, q) is None and search_minutes_refusal(600, True, q) is None
    assert "at most 10 minutes (asked: 30)" in search_minutes_refusal(30, False, q)
    assert build_bytes(1_000_000) > 4_000_000  # a model file of float weights fits in the estimate


def test_quotas_come_from_the_servers_environment(monkeypatch):
    monkeypatch.setenv("EXPLORER_MAX_QUEUED_BUILDS", "5")
    monkeypatch.setenv("EXPLORER_DISK_BUDGET_GB", "0.5")
    monkeypatch.setenv("EXPLORER_MEMBER_SEARCH_MINUTES", "2")
    assert Quotas.from_env() == Quotas(5, GIB // 2, 2.0)


def _zip(classes: int = 2, per_class: int = 6, side: int = 32) -> bytes:
    rng, buf = np.random.default_rng(0), io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for c in range(classes):
            for i in range(per_class):
                png = io.BytesIO()
                Image.fromarray(rng.integers(0, 255, (side, side), dtype=np.uint8)).save(png, "PNG")
                zf.writestr(f"class{c}/{i}.png", png.getvalue())
    return buf.getvalue()


def test_an_upload_past_the_disk_budget_is_refused_and_nothing_is_stored():
    data = _zip()
    with pytest.raises(uploads.UploadError, match=r"disk budget for this app's data has 0.0 MiB left"):
        uploads.import_zip("too-big", data, uploads.Limits(max_disk_bytes=1000))
    assert "too-big" not in datasets.available()
    assert not (datasets.user_dataset_dir("too-big")).exists()


# --- the pages, as a viewer and as the owner, on a server listening beyond this machine ---------------------

@pytest.fixture
def shared_server(monkeypatch):
    """The pages as served with --server.address 0.0.0.0, the owner token in the server's environment."""
    monkeypatch.setenv(roles.TOKEN_ENV, TOKEN)
    monkeypatch.delenv(roles.OPEN_ENV, raising=False)
    before = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    yield
    config.set_option("server.address", before)


def _open(page: str, token: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if token is not None:
        at.query_params["token"] = token
    at.run()
    if page != "pareto":
        at.switch_page(str(REPO / "pages" / f"{page}.py"))
        at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _labels(at: AppTest) -> set[str]:
    return {b.label for b in at.button} | {b.label for b in at.get("form_submit_button")}


ACTIONS = {"pareto": "Re-measure all on this host", "search": "Start", "data": "Import"}


@pytest.fixture
def uploaded(shared_server):
    report = uploads.import_zip("team-upload", _zip())
    yield report.info.name
    if report.info.name in datasets.available():
        from explorer.store.cache import Store

        uploads.delete(report.info.name, Store())


@pytest.mark.slow
def test_a_viewer_sees_no_action_and_the_owner_link_unlocks_them_across_pages(uploaded):
    assert any("Viewer" in c.value for c in _open("pareto").sidebar.caption)
    for page, action in ACTIONS.items():
        viewer = _open(page)
        assert action not in _labels(viewer), page
    explore = _open("explore")
    explore.radio(key="k_depth").set_value(1)
    explore.radio(key="k_conv").set_value("separable").run()  # not in the shipped cache
    assert "Train and measure" not in _labels(explore)
    assert any("Building needs the owner" in c.value for c in explore.caption)
    data = _open("data")
    assert "Delete" not in _labels(data) and not any("Delete" in e.label for e in data.expander)
    for token in ("wrong", "", "x" * 10_240):
        refused = _open("data", token)
        assert "Import" not in _labels(refused) and "token" not in refused.query_params
    owner = _open("pareto", TOKEN)
    assert ACTIONS["pareto"] in _labels(owner)
    assert "token" not in owner.query_params  # taken out of the address bar: a shared view link never carries it
    for page in ("data", "search", "pareto"):  # the token survives page switches
        owner.switch_page(str(REPO / "pages" / f"{page}.py"))
        owner.run()
        assert ACTIONS[page] in _labels(owner), page
        assert page != "data" or "Delete" in _labels(owner)
        # a Ray address is the server's configuration: no text box, not even for the owner
        assert page != "search" or [t.key for t in owner.text_input] == ["s_name"]


@pytest.mark.slow
def test_the_search_page_offers_only_the_servers_ray_address(shared_server, monkeypatch):
    monkeypatch.setenv("EXPLORER_RAY_ADDRESS", "ray://head.example:10001")
    at = _open("search", TOKEN)
    assert [c.label for c in at.checkbox] == ["build trials on the Ray cluster at ray://head.example:10001"]
    assert not any("ray" in (t.key or "") for t in at.text_input)


@pytest.mark.slow
def test_a_crafted_request_for_delete_from_a_viewer_changes_nothing(uploaded):
    owner = _open("data", TOKEN)
    delete = next(b for b in owner.button if b.label == "Delete")
    sure = next(c for c in owner.checkbox if c.key == f"sure-{uploaded}")
    viewer = _open("data")
    crafted = WidgetStates()
    tick = crafted.widgets.add()
    tick.id, tick.bool_value = sure.id, True
    click = crafted.widgets.add()
    click.id, click.trigger_value = delete.id, True
    viewer._run(crafted)  # what a hand-written websocket message would ask the server to run
    assert not viewer.exception
    assert uploaded in datasets.available() and datasets.user_dataset_dir(uploaded).is_dir()
    owner_again = _open("data", TOKEN)  # the same request from the owner does delete: the crafted one was well-formed
    owner_again._run(crafted)
    assert uploaded not in datasets.available()


@pytest.mark.slow
def test_a_build_past_the_disk_budget_is_refused_with_what_is_left(shared_server, monkeypatch):
    from explorer.run.queue import Queue

    monkeypatch.setenv("EXPLORER_DISK_BUDGET_GB", "0.001")  # 1 MiB: less than the shipped cache already takes
    at = _open("explore", TOKEN)
    at.radio(key="k_depth").set_value(1)
    at.radio(key="k_conv").set_value("separable").run()  # not in the shipped cache
    before = len(Queue().jobs(kind="build"))
    next(b for b in at.button if b.label == "Train and measure").click().run()
    assert any("disk budget for this app's data (1 MiB) has 0 MiB left" in e.value for e in at.error), \
        [e.value for e in at.error]
    assert len(Queue().jobs(kind="build")) == before
