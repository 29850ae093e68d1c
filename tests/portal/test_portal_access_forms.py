"""The Access page's forms in process: an Owner creates a scope map and a token (its
passwords shown on that answer only, and they log in), assigns and removes a role, adds
and removes an IP rule, creates and deletes a cache rule; every refusal of the services
is shown on the page above its form with a 4xx, never a 500; a Reader changes nothing."""

from __future__ import annotations

import re

from endpoint import AppEndpoint
from test_portal_operations import endpoint, owner  # noqa: F401 (fixtures)
from test_portal_pages import _basic, _csrf, sign_in
from test_portal_webhooks import identity

ACCESS = "/portal/r/dockyard/access"


def test_an_owner_creates_a_token_and_sees_its_passwords_once(
    endpoint: AppEndpoint,  # noqa: F811
    owner,  # noqa: F811
) -> None:
    services = endpoint.services
    registry = services.registries.all()[0]
    with endpoint.client() as http:
        sign_in(http, *owner)
        token = _csrf(http.get(ACCESS).text)
        made = http.post(
            f"{ACCESS}/scope-maps",
            data={
                "csrf": token,
                "name": "formmap",
                "actions": "repositories/team/app/content/read\n\n",
                "description": "made in the portal",
            },
        )
        assert made.status_code == 303
        assert "Scope map saved." in http.get(made.headers["location"]).text
        [found] = [
            m for m in services.administration.scope_maps(registry.id) if m.name == "formmap"
        ]
        assert found.actions == ["repositories/team/app/content/read"]
        bad = http.post(
            f"{ACCESS}/scope-maps", data={"csrf": token, "name": "badmap", "actions": "nonsense"}
        )
        assert (
            bad.status_code == 400 and "Not changed:" in bad.text and 'id="maps-error"' in bad.text
        )

        created = http.post(
            f"{ACCESS}/tokens", data={"csrf": token, "name": "formtoken", "scope_map": "formmap"}
        )
        assert created.status_code == 200 and "shown this once" in created.text
        assert created.headers["cache-control"] == "no-store"
        passwords = re.findall(r"<dt>password\d?</dt><dd><code>([^<]+)</code>", created.text)
        assert len(passwords) == 2
        pulled = http.get("/v2/team/app/manifests/v1", headers=_basic("formtoken", passwords[0]))
        assert pulled.status_code == 200
        again = http.get(ACCESS).text
        assert "formtoken" in again and passwords[0] not in again and passwords[1] not in again
        for data, words in (
            ({"name": "formtoken", "scope_map": "formmap"}, "exists already"),
            ({"name": "othertoken", "scope_map": "nosuchmap"}, "no scope map"),
            ({"name": "", "scope_map": "formmap"}, "needs a name"),
        ):
            refused = http.post(f"{ACCESS}/tokens", data={"csrf": token, **data})
            assert refused.status_code == 400 and words in refused.text, data
        in_use = http.post(f"{ACCESS}/scope-maps/formmap/delete", data={"csrf": token})
        assert in_use.status_code == 400 and "used by a token" in in_use.text
        http.post(f"{ACCESS}/tokens/formtoken/delete", data={"csrf": token})
        gone = http.post(f"{ACCESS}/scope-maps/formmap/delete", data={"csrf": token})
        assert gone.status_code == 303
        unknown = http.post(f"{ACCESS}/tokens/nosuchtoken/delete", data={"csrf": token})
        assert unknown.status_code == 400


def test_an_owner_changes_roles_network_and_cache_rules(
    endpoint: AppEndpoint,  # noqa: F811
    owner,  # noqa: F811
) -> None:
    services = endpoint.services
    registry = services.registries.all()[0]
    target_id, _ = identity(endpoint, "form-target", "Reader")
    with endpoint.client() as http:
        sign_in(http, *owner)
        token = _csrf(http.get(ACCESS).text)
        assigned = http.post(
            f"{ACCESS}/roles",
            data={"csrf": token, "identity": "form-target", "role": "AcrPull", "repository": ""},
        )
        assert assigned.status_code == 303
        [pull] = [
            a
            for a in services.administration.role_assignments(registry.id)
            if a.identity_id == target_id and a.role == "AcrPull"
        ]
        bad_role = http.post(
            f"{ACCESS}/roles", data={"csrf": token, "identity": "form-target", "role": "God"}
        )
        assert bad_role.status_code == 400 and "unknown role" in bad_role.text
        removed = http.post(f"{ACCESS}/roles/{pull.id}/delete", data={"csrf": token})
        assert removed.status_code == 303
        assert pull.id not in [a.id for a in services.administration.role_assignments(registry.id)]

        added = http.post(f"{ACCESS}/network", data={"csrf": token, "add": "203.0.113.0/24"})
        assert added.status_code == 303
        assert [r.rule for r in services.network_policies.rules(registry.id)] == ["203.0.113.0/24"]
        bad_ip = http.post(f"{ACCESS}/network", data={"csrf": token, "add": "not-an-ip"})
        assert bad_ip.status_code == 400 and 'id="network-error"' in bad_ip.text
        dropped = http.post(f"{ACCESS}/network", data={"csrf": token, "remove": "203.0.113.0/24"})
        assert dropped.status_code == 303 and services.network_policies.rules(registry.id) == []
        bad_default = http.post(
            f"{ACCESS}/network", data={"csrf": token, "default_action": "Maybe"}
        )
        assert bad_default.status_code == 400

        cached = http.post(
            f"{ACCESS}/cache-rules",
            data={
                "csrf": token,
                "name": "formcache",
                "source": "docker.io/library/alpine",
                "target": "alpine",
            },
        )
        assert cached.status_code == 303
        assert [r.name for r in services.cache_rules.rules(registry)] == ["formcache"]
        mismatched = http.post(
            f"{ACCESS}/cache-rules",
            data={
                "csrf": token,
                "name": "badcache",
                "source": "docker.io/library/*",
                "target": "x",
            },
        )
        assert mismatched.status_code == 400 and "wildcards" in mismatched.text
        deleted = http.post(f"{ACCESS}/cache-rules/formcache/delete", data={"csrf": token})
        assert deleted.status_code == 303 and services.cache_rules.rules(registry) == []


def test_a_reader_sees_no_forms_and_changes_nothing(endpoint: AppEndpoint) -> None:  # noqa: F811
    with endpoint.client() as http:
        sign_in(http, *identity(endpoint, "form-reader", "Reader"))
        page = http.get(ACCESS)
        assert page.status_code == 200
        for text in (
            "New token",
            "New scope map",
            "Assign a role",
            "Add IP rule",
            "New cache rule",
        ):
            assert text not in page.text, text
        token = _csrf(page.text)
        for path, data in (
            ("scope-maps", {"name": "readermap", "actions": "repositories/a/content/read"}),
            ("tokens", {"name": "readertoken", "scope_map": "x"}),
            ("roles", {"identity": "form-reader", "role": "Owner"}),
            ("network", {"add": "198.51.100.1"}),
            ("cache-rules", {"name": "readercache", "source": "docker.io/a/b", "target": "b"}),
        ):
            assert http.post(f"{ACCESS}/{path}", data={"csrf": token, **data}).status_code == 403
