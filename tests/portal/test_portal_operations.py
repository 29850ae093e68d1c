"""The portal's operations pages in process: replications with status and lag, tasks
and their runs, a running run's log followed by htmx's polls until the run ends, the
audit log with its filters and pages, and the read-only access lists; a Reader reads
what the management API lets it read but not a run's log; the admin user, who has no
management rights on the APIs either, gets 403."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from endpoint import AppEndpoint
from test_portal_pages import ADMIN_PASSWORD, _basic, _csrf, sign_in
from test_portal_webhooks import identity

from dockyard.metadata.audit import RepositoryEventRecord
from dockyard.metadata.tasks import SUCCEEDED, RunWrites
from dockyard.portal.operations import LOG_WINDOW
from dockyard.server import prepare
from dockyard.services import build_services
from dockyard.settings import load_settings


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppEndpoint]:
    settings = load_settings(
        None, data_dir=tmp_path_factory.mktemp("operations"), admin_password=ADMIN_PASSWORD
    )
    prepare(settings)
    found = AppEndpoint(build_services(settings))
    found.push_small_image("team/app", "v1", headers=_basic("dockyard", ADMIN_PASSWORD))
    found.push_small_image("team/other", "v1", headers=_basic("dockyard", ADMIN_PASSWORD))
    with found.client() as http:
        for repo in ("team/app", "team/other"):
            pulled = http.get(
                f"/v2/{repo}/manifests/v1", headers=_basic("dockyard", ADMIN_PASSWORD)
            )
            assert pulled.status_code == 200
    found.services.audit.flush()
    yield found
    found.close()


@pytest.fixture(scope="module")
def owner(endpoint: AppEndpoint) -> tuple[str, str]:
    return identity(endpoint, "ops-owner", "Owner")


def test_replications_show_each_region_with_its_lag(endpoint: AppEndpoint, owner) -> None:
    with endpoint.client() as http:
        sign_in(http, *owner)
        assert "/portal/r/dockyard/replications" in http.get("/portal/").text
        page = http.get("/portal/r/dockyard/replications")
        assert page.status_code == 200
        home = endpoint.services.replications.list(endpoint.services.registries.all()[0])[0]
        assert home.location in page.text and "(home)" in page.text
        assert "Queue depth" in page.text and "Region endpoint" in page.text


def test_a_running_runs_log_is_followed_until_it_ends(endpoint: AppEndpoint, owner) -> None:
    services = endpoint.services
    registry = services.registries.all()[0]
    with services.meta.transaction() as tx:
        writes = RunWrites(tx)
        number = writes.add(registry.id, "QuickRun", {}, None, 600)
    run = services.runs.get(registry, f"ca{number}")
    with services.meta.transaction() as tx:
        assert RunWrites(tx).claim(run.id, "portal-test")
    log = services.run_logs.start(registry.id, number)
    log.write_bytes(b"Step 1/2 : FROM scratch\r\nhalf a li")
    with endpoint.client() as http:
        sign_in(http, *owner)
        listing = http.get("/portal/r/dockyard/tasks")
        assert listing.status_code == 200 and f"ca{number}" in listing.text
        page = http.get(f"/portal/r/dockyard/runs/ca{number}")
        assert page.status_code == 200 and "Running" in page.text
        assert "Step 1/2 : FROM scratch" in page.text and "half a li" not in page.text
        poll = re.search(r'hx-get="([^"]+/log\?from=(\d+))" hx-trigger="every 2s"', page.text)
        assert poll is not None and int(poll.group(2)) == len(b"Step 1/2 : FROM scratch\r\n")
        with log.open("ab") as more:
            more.write(b"ne\r\nStep 2/2 : COPY a /\r\n")
        step = http.get(poll.group(1).replace("&amp;", "&"), headers={"HX-Request": "true"})
        assert step.status_code == 200
        assert "half a line\nStep 2/2 : COPY a /" in step.text and "every 2s" in step.text
        with services.meta.transaction() as tx:
            RunWrites(tx).finish(
                run.id, SUCCEEDED, [{"repository": "team/app", "tag": "built"}], None
            )
        following = re.search(r'hx-get="([^"]+)"', step.text)
        assert following is not None
        last = http.get(following.group(1).replace("&amp;", "&"), headers={"HX-Request": "true"})
        assert "every 2s" not in last.text and "Succeeded" in last.text
        ended = http.get(f"/portal/r/dockyard/runs/ca{number}")
        assert "every 2s" not in ended.text and "team/app:built" in ended.text


def test_the_audit_log_filters_and_pages(endpoint: AppEndpoint, owner) -> None:
    with endpoint.client() as http:
        sign_in(http, *owner)
        every = http.get("/portal/r/dockyard/audit")
        assert every.status_code == 200
        assert "team/app" in every.text and "team/other" in every.text
        one = http.get(
            "/portal/r/dockyard/audit", params={"repository": "team/app", "operation": "Pull"}
        )
        assert "team/app" in one.text and "team/other" not in one.text
        none = http.get("/portal/r/dockyard/audit", params={"operation": "Delete"})
        assert "No events match." in none.text
        later = http.get("/portal/r/dockyard/audit", params={"until": "2000-01-01T00:00"})
        assert "No events match." in later.text
        bad = http.get("/portal/r/dockyard/audit", params={"since": "yesterday"})
        assert bad.status_code == 400 and "give 2h" in bad.text
        # the login events: this owner's own sign-in among them, its method and address
        logins = http.get("/portal/r/dockyard/audit", params={"kind": "login"})
        assert logins.status_code == 200 and "Login events, newest first" in logins.text
        row = logins.text.split("<tbody>")[1].split("</tr>")[0]
        assert "client_credentials" in row and owner[0] in row and "127.0.0.1" in row
        odd = http.get("/portal/r/dockyard/audit", params={"kind": "everything"})
        assert odd.status_code == 400


def test_the_access_lists_show_tokens_roles_and_rules(endpoint: AppEndpoint, owner) -> None:
    services = endpoint.services
    registry = services.registries.all()[0]
    services.administration.put_scope_map(
        registry, "portalmap", ["repositories/team/app/content/read"]
    )
    services.administration.create_token(registry, "portaltoken", "portalmap")
    with endpoint.client() as http:
        sign_in(http, *owner)
        page = http.get("/portal/r/dockyard/access")
        assert page.status_code == 200
        for text in ("portalmap", "portaltoken", "ops-owner", "Owner", "No IP rules."):
            assert text in page.text, text


def test_a_reader_reads_but_not_a_runs_log(endpoint: AppEndpoint) -> None:
    services = endpoint.services
    registry = services.registries.all()[0]
    with services.meta.transaction() as tx:
        number = RunWrites(tx).add(registry.id, "QuickRun", {}, None, 600)
    services.run_logs.start(registry.id, number).write_bytes(b"secret build output\r\n")
    with endpoint.client() as http:
        sign_in(http, *identity(endpoint, "ops-reader", "Reader"))
        for path in ("replications", "tasks", "audit", "access"):
            assert http.get(f"/portal/r/dockyard/{path}").status_code == 200, path
        page = http.get(f"/portal/r/dockyard/runs/ca{number}")
        assert page.status_code == 200 and "secret build output" not in page.text
        log = http.get(f"/portal/r/dockyard/runs/ca{number}/log?from=0")
        assert log.status_code == 403 and "secret build output" not in log.text


def test_the_admin_user_has_no_operations_pages(endpoint: AppEndpoint) -> None:
    with endpoint.client() as http:
        sign_in(http, "dockyard", ADMIN_PASSWORD)
        for path in ("replications", "tasks", "runs/ca1", "audit", "access"):
            assert http.get(f"/portal/r/dockyard/{path}").status_code == 403, path


def test_the_audit_log_pages_back_in_time(endpoint: AppEndpoint, owner) -> None:
    audit = endpoint.services.audit
    start = datetime(2001, 1, 1, tzinfo=UTC)
    for second in range(55):
        audit.buffer(
            RepositoryEventRecord(
                time=start + timedelta(seconds=second),
                operation="Pull",
                repository=f"old/r{second:02}",
                result_type="200",
                login_server="localhost:5000",
            )
        )
    audit.flush()
    with endpoint.client() as http:
        sign_in(http, *owner)
        first = http.get("/portal/r/dockyard/audit", params={"until": "2002-01-01T00:00"})
        assert "old/r54" in first.text and "old/r05" in first.text and "old/r04" not in first.text
        older = re.search(r'<a rel="next" href="([^"]+)"', first.text)
        assert older is not None
        second = http.get("/portal/r/dockyard/audit" + older.group(1).replace("&amp;", "&"))
        assert "old/r04" in second.text and "old/r00" in second.text
        assert "old/r05" not in second.text and 'rel="next"' not in second.text


def test_an_owner_disables_and_deletes_a_token_and_cancels_a_run(
    endpoint: AppEndpoint, owner
) -> None:
    services = endpoint.services
    registry = services.registries.all()[0]
    services.administration.put_scope_map(registry, "changemap", ["repositories/a/content/read"])
    services.administration.create_token(registry, "changetoken", "changemap")
    with services.meta.transaction() as tx:
        number = RunWrites(tx).add(registry.id, "QuickRun", {}, None, 600)
    with endpoint.client() as http:
        sign_in(http, *owner)
        page = http.get("/portal/r/dockyard/access")
        token = _csrf(page.text)
        base = "/portal/r/dockyard/access/tokens/changetoken"
        disabled = http.post(f"{base}/status", data={"csrf": token, "status": "disabled"})
        assert disabled.status_code == 303
        [found] = services.administration.tokens(registry.id, "changetoken")
        assert not found.enabled
        assert http.post(f"{base}/delete", data={}).status_code == 403  # no CSRF token
        deleted = http.post(f"{base}/delete", data={"csrf": token})
        assert deleted.status_code == 303
        assert services.administration.tokens(registry.id, "changetoken") == []
        assert "Token changetoken deleted." in http.get(deleted.headers["location"]).text
        run_page = http.get(f"/portal/r/dockyard/runs/ca{number}")
        assert "Cancel run" in run_page.text
        canceled = http.post(f"/portal/r/dockyard/runs/ca{number}/cancel", data={"csrf": token})
        assert canceled.status_code == 303
        assert services.runs.get(registry, f"ca{number}").status == "Canceled"


def test_a_reader_cannot_change_tokens_or_cancel_runs(endpoint: AppEndpoint) -> None:
    services = endpoint.services
    registry = services.registries.all()[0]
    services.administration.put_scope_map(registry, "keptmap", ["repositories/a/content/read"])
    services.administration.create_token(registry, "kepttoken", "keptmap")
    with services.meta.transaction() as tx:
        number = RunWrites(tx).add(registry.id, "QuickRun", {}, None, 600)
    with endpoint.client() as http:
        sign_in(http, *identity(endpoint, "ops-reader2", "Reader"))
        page = http.get("/portal/r/dockyard/access")
        assert "Delete token" not in page.text
        token = _csrf(page.text)
        base = "/portal/r/dockyard/access/tokens/kepttoken"
        for path, data in (
            (f"{base}/status", {"status": "disabled"}),
            (f"{base}/delete", {}),
            (f"/portal/r/dockyard/runs/ca{number}/cancel", {}),
        ):
            assert http.post(path, data={"csrf": token, **data}).status_code == 403, path
    [kept] = services.administration.tokens(registry.id, "kepttoken")
    assert kept.enabled and services.runs.get(registry, f"ca{number}").status == "Queued"


def test_a_line_longer_than_the_window_does_not_stall_the_poll(
    endpoint: AppEndpoint, owner
) -> None:
    services = endpoint.services
    registry = services.registries.all()[0]
    with services.meta.transaction() as tx:
        number = RunWrites(tx).add(registry.id, "QuickRun", {}, None, 600)
    run = services.runs.get(registry, f"ca{number}")
    with services.meta.transaction() as tx:
        assert RunWrites(tx).claim(run.id, "portal-test")
    services.run_logs.start(registry.id, number).write_bytes(b"x" * (LOG_WINDOW + 10))
    with endpoint.client() as http:
        sign_in(http, *owner)
        step = http.get(f"/portal/r/dockyard/runs/ca{number}/log?from=0")
        assert step.status_code == 200 and f"from={LOG_WINDOW}" in step.text
        assert step.text.count("x") >= LOG_WINDOW
