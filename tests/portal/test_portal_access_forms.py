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
    registry = endpoint.services.registries.all()[0]
    administration = endpoint.services.administration
    administration.put_scope_map(registry, "readermap", ["repositories/a/content/write"])
    made = administration.create_token(registry, "readertoken", "readermap")
    before = administration.token_passwords(administration.tokens(registry.id, "readertoken")[0].id)
    assert made.passwords
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
            "Save scope map",
        ):
            assert text not in page.text, text
        token = _csrf(page.text)
        for path, data in (
            ("scope-maps", {"name": "readermap", "actions": "repositories/a/content/read"}),
            ("tokens", {"name": "readertoken", "scope_map": "x"}),
            ("roles", {"identity": "form-reader", "role": "Owner"}),
            ("network", {"add": "198.51.100.1"}),
            ("cache-rules", {"name": "readercache", "source": "docker.io/a/b", "target": "b"}),
            ("scope-maps/readermap/edit", {"actions": "repositories/a/content/read"}),
            ("tokens/readertoken/edit", {"scope_map": "readermap", "status": "enabled"}),
            ("tokens/readertoken/passwords", {"password": "password1"}),
            ("tokens/readertoken/passwords/password1/delete", {}),
        ):
            assert http.post(f"{ACCESS}/{path}", data={"csrf": token, **data}).status_code == 403
        tokens = endpoint.services.administration.tokens(registry.id, "readertoken")
        passwords = endpoint.services.administration.token_passwords(tokens[0].id)
        assert [p.name for p in passwords] == ["password1", "password2"]
        assert [p.value for p in passwords] == [p.value for p in before]
        [kept] = endpoint.services.administration.scope_maps(registry.id, "readermap")
        assert kept.actions == ["repositories/a/content/write"]
        token_page = http.get(f"{ACCESS}/tokens/readertoken")
        assert token_page.status_code == 200 and "Read-only" in token_page.text
        for text in ("Generate password", "Save token", "Delete password1"):
            assert text not in token_page.text, text


def test_an_owner_edits_a_scope_map(endpoint: AppEndpoint, owner) -> None:  # noqa: F811
    services = endpoint.services
    registry = services.registries.all()[0]
    services.administration.put_scope_map(
        registry, "editmap", ["repositories/team/app/content/read"], "before"
    )
    with endpoint.client() as http:
        sign_in(http, *owner)
        page = http.get(ACCESS).text
        assert 'for="map-' in page and "Save scope map editmap" in page
        token = _csrf(page)
        edited = http.post(
            f"{ACCESS}/scope-maps/editmap/edit",
            data={
                "csrf": token,
                "actions": "repositories/team/app/content/read\n"
                "repositories/team/other/content/write\n",
                "description": "after",
            },
        )
        assert edited.status_code == 303
        assert "Scope map editmap saved." in http.get(edited.headers["location"]).text
        [found] = services.administration.scope_maps(registry.id, "editmap")
        assert found.actions == [
            "repositories/team/app/content/read",
            "repositories/team/other/content/write",
        ]
        assert found.description == "after"
        for name, actions, words in (
            ("editmap", "repositories/team/app/content/fly", "content/fly"),
            ("editmap", "", "at least one action"),
            ("nosuchmap", "repositories/a/content/read", "no scope map nosuchmap"),
        ):
            refused = http.post(
                f"{ACCESS}/scope-maps/{name}/edit", data={"csrf": token, "actions": actions}
            )
            assert refused.status_code == 400 and 'id="maps-error"' in refused.text, name
            assert words in refused.text, name
        assert services.administration.scope_maps(registry.id, "editmap")[0] == found
        assert not services.administration.scope_maps(registry.id, "nosuchmap")


def test_an_owner_edits_a_token_and_makes_and_deletes_its_passwords(
    endpoint: AppEndpoint,  # noqa: F811
    owner,  # noqa: F811
) -> None:
    services = endpoint.services
    administration = services.administration
    registry = services.registries.all()[0]
    for name in ("tokmap-one", "tokmap-two"):
        administration.put_scope_map(registry, name, ["repositories/team/app/content/read"])
    made = administration.create_token(registry, "edittoken", "tokmap-one")
    page_url = f"{ACCESS}/tokens/edittoken"

    def pulls(password: str) -> int:
        headers = _basic("edittoken", password)
        return http.get("/v2/team/app/manifests/v1", headers=headers).status_code

    with endpoint.client() as http:
        sign_in(http, *owner)
        assert f'href="{page_url}"' in http.get(ACCESS).text
        page = http.get(page_url)
        assert page.status_code == 200 and "Generate password" in page.text
        assert made.passwords["password1"] not in page.text
        assert http.get(f"{ACCESS}/tokens/nosuchtoken").status_code == 404
        token = _csrf(page.text)

        edited = http.post(
            f"{page_url}/edit",
            data={"csrf": token, "scope_map": "tokmap-two", "status": "disabled"},
        )
        assert edited.status_code == 303
        assert "Token edittoken saved." in http.get(edited.headers["location"]).text
        [found] = administration.tokens(registry.id, "edittoken")
        assert (found.scope_map, found.enabled) == ("tokmap-two", False)
        assert pulls(made.passwords["password1"]) == 401
        for data, words in (
            ({"scope_map": "nosuchmap", "status": "enabled"}, "no scope map nosuchmap"),
            ({"scope_map": "tokmap-one", "status": "maybe"}, "enabled or disabled"),
        ):
            refused = http.post(f"{page_url}/edit", data={"csrf": token, **data})
            assert refused.status_code == 400 and 'id="token-error"' in refused.text
            assert words in refused.text, data
        assert administration.tokens(registry.id, "edittoken")[0] == found
        back = {"csrf": token, "scope_map": "tokmap-one", "status": "enabled"}
        assert http.post(f"{page_url}/edit", data=back).status_code == 303
        assert pulls(made.passwords["password1"]) == 200

        generated = http.post(
            f"{page_url}/passwords",
            data={"csrf": token, "password": "password1", "expiry": "2999-01-31"},
        )
        assert generated.status_code == 200 and "shown this once" in generated.text
        assert generated.headers["cache-control"] == "no-store"
        [value] = re.findall(r'<code id="new-password">([^<]+)</code>', generated.text)
        assert pulls(value) == 200
        assert pulls(made.passwords["password1"]) == 401
        assert pulls(made.passwords["password2"]) == 200
        stored = {p.name: p for p in administration.token_passwords(found.id)}
        assert stored["password1"].expires_at.strftime("%Y-%m-%d %H:%M") == "2999-01-31 00:00"
        assert value not in http.get(page_url).text
        for data, words in (
            ({"password": "password3"}, "password name must be one of"),
            ({"password": "password2", "expiry": "next week"}, "ISO 8601"),
        ):
            refused = http.post(f"{page_url}/passwords", data={"csrf": token, **data})
            assert refused.status_code == 400 and words in refused.text, data
        assert pulls(made.passwords["password2"]) == 200

        deleted = http.post(f"{page_url}/passwords/password2/delete", data={"csrf": token})
        assert deleted.status_code == 303
        after = http.get(deleted.headers["location"]).text
        assert "password2 of token edittoken deleted." in after
        assert pulls(made.passwords["password2"]) == 401 and pulls(value) == 200
        again = http.post(f"{page_url}/passwords/password2/delete", data={"csrf": token})
        assert again.status_code == 400 and "has no password2" in again.text
        remade = http.post(f"{page_url}/passwords", data={"csrf": token, "password": "password2"})
        [second] = re.findall(r'<code id="new-password">([^<]+)</code>', remade.text)
        assert pulls(second) == 200
