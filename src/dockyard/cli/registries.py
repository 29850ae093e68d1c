"""`dockyard registry create|update|show|list|delete`, `credential show|renew`,
`show-usage` and `network-rule add|list|remove`, modelled on `az acr create|update|...`:
a server's registries through its management API (cli/management.py), never its
database. Servers apply a change from their next request."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table

from dockyard.cli.local import ONLINE, console, fail
from dockyard.cli.management import PROVIDER, Management, command, spinner
from dockyard.cli.remote import Output, OutputOption, Switch, print_json

RegistryName = Annotated[
    str,
    typer.Option("--name", "-n", help="Registry name (or its login server).", show_default=False),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


class Sku(StrEnum):
    Basic = "Basic"
    Standard = "Standard"
    Premium = "Premium"


class DefaultAction(StrEnum):
    Allow = "Allow"
    Deny = "Deny"


SkuOption = Annotated[
    Sku | None,
    typer.Option(
        case_sensitive=False,
        help="Tier: its limits apply at once; a tier what the registry uses does not fit "
        "is refused with the reason.",
    ),
]
TagsOption = Annotated[
    list[str] | None, typer.Option("--tags", help="KEY=VALUE, repeatable; replaces the tags.")
]


def _switch(flag: str, what: str) -> Any:
    return typer.Option(flag, help=f"true or false: {what}.", show_default=False)


def _tags(given: list[str] | None) -> dict[str, str] | None:
    if given is None:
        return None
    tags = {}
    for item in given:
        key, equals, value = item.partition("=")
        if not equals:
            fail(f"--tags {item!r} must be KEY=VALUE")
        tags[key] = value
    return tags


def _size(text: str) -> int | None:
    """`--storage-quota`: a size people write (4200, 100KiB, 50GiB), or `tier` (None)."""
    from dockyard.common.errors import RequestInvalid
    from dockyard.tiers.sizes import parse_size

    if text.lower() == "tier":
        return None
    try:
        return parse_size(text)
    except RequestInvalid as exc:
        fail(f"--storage-quota: {exc.message}")


def _flag(value: Switch | None) -> bool | None:
    return None if value is None else value is Switch.true


def _show(registries: list[dict[str, Any]], output: Output) -> None:
    if output is Output.json:
        print_json(registries)
        return
    table = Table(
        "NAME", "RESOURCE GROUP", "LOCATION", "SKU", "LOGIN SERVER", "CREATION DATE", "ADMIN"
    )
    for registry in registries:
        properties = registry["properties"]
        table.add_row(
            registry["name"],
            registry["id"].split("/")[4],
            registry["location"],
            registry["sku"]["name"],
            properties["loginServer"],
            properties["creationDate"],
            "enabled" if properties["adminUserEnabled"] else "disabled",
        )
    console.print(table)


def _show_one(registry: dict[str, Any], output: Output) -> None:
    if output is Output.json:
        print_json(registry)
        return
    properties = registry["properties"]
    rules = properties["networkRuleSet"]
    table = Table("attribute", "value", show_header=False)
    for key, value in (
        ("name", registry["name"]),
        ("id", registry["id"]),
        ("loginServer", properties["loginServer"]),
        ("location", registry["location"]),
        ("sku", registry["sku"]["name"]),
        ("creationDate", properties["creationDate"]),
        ("adminUserEnabled", properties["adminUserEnabled"]),
        ("anonymousPullEnabled", properties["anonymousPullEnabled"]),
        ("publicNetworkAccess", properties["publicNetworkAccess"]),
        ("defaultAction", rules["defaultAction"]),
        ("ipRules", ", ".join(rule["value"] for rule in rules["ipRules"])),
        ("tags", ", ".join(f"{k}={v}" for k, v in (registry.get("tags") or {}).items())),
    ):
        table.add_row(key, str(value))
    console.print(table)


# -- registries -------------------------------------------------------------------------------

registry = typer.Typer(
    no_args_is_help=True, help="A server's registries, through its management API (az acr)."
)


@command(registry, "create")
def create(
    api: Management,
    name: RegistryName,
    sku: SkuOption = None,
    resource_group: Annotated[
        str | None,
        typer.Option(
            "--resource-group", "-g", help="Resource group (default: the server's default)."
        ),
    ] = None,
    location: Annotated[
        str | None, typer.Option("--location", "-l", help="Location (default: the server's).")
    ] = None,
    admin_enabled: Annotated[Switch | None, _switch("--admin-enabled", "the admin user")] = None,
    tags: TagsOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Create a registry, served at NAME.<the server's registry domain> from now on (its
    tier: --sku, else Premium)."""
    groups = api.values(f"/subscriptions/{api.subscription}/resourcegroups")
    group = resource_group or (groups[0]["name"] if groups else "dockyard")
    body: dict[str, Any] = {
        "location": location or (groups[0]["location"] if groups else "local"),
        "sku": {"name": (sku or Sku.Premium).value},
        "properties": {},
    }
    if admin_enabled is not None:
        body["properties"]["adminUserEnabled"] = _flag(admin_enabled)
    if tags is not None:
        body["tags"] = _tags(tags)
    check = {"name": name, "type": f"{PROVIDER}/registries"}
    url = f"/subscriptions/{api.subscription}/providers/{PROVIDER}/checkNameAvailability"
    answer = api.call("POST", url, json=check)
    if not answer["nameAvailable"]:
        fail(f"{answer['reason']}: {answer['message']}")
    with spinner(f"creating {name}"):
        created = api.call("PUT", f"{api.group_url(group)}/{name}", json=body)
    _show_one(created, output)


@command(registry, "update")
def update(
    api: Management,
    name: RegistryName,
    sku: SkuOption = None,
    admin_enabled: Annotated[Switch | None, _switch("--admin-enabled", "the admin user")] = None,
    anonymous_pull_enabled: Annotated[
        Switch | None, _switch("--anonymous-pull-enabled", "pulls without logging in")
    ] = None,
    public_network_enabled: Annotated[
        Switch | None,
        _switch("--public-network-enabled", "false refuses every client, whatever the rules"),
    ] = None,
    default_action: Annotated[
        DefaultAction | None,
        typer.Option(
            case_sensitive=False,
            help="Deny admits only the addresses of the network rules (dockyard network-rule).",
        ),
    ] = None,
    storage_quota: Annotated[
        str | None,
        typer.Option(
            help="The registry's own storage quota (e.g. 50GiB, 2TiB), replacing its tier's "
            "storage limit; 'tier' goes back to the tier's (show-usage shows it)."
        ),
    ] = None,
    tags: TagsOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Change a registry's tier, storage quota, admin user, anonymous pull, public network
    access, default network action or tags."""
    properties: dict[str, Any] = {
        key: value
        for key, value in (
            ("adminUserEnabled", _flag(admin_enabled)),
            ("anonymousPullEnabled", _flag(anonymous_pull_enabled)),
            (
                "publicNetworkAccess",
                None
                if public_network_enabled is None
                else ("Enabled" if public_network_enabled is Switch.true else "Disabled"),
            ),
        )
        if value is not None
    }
    if storage_quota is not None:
        properties["storageQuotaBytes"] = _size(storage_quota)
    url = api.registry_url(name)
    if default_action is not None:
        rules = api.registry(name)["properties"]["networkRuleSet"]
        properties["networkRuleSet"] = {**rules, "defaultAction": default_action.value}
    body: dict[str, Any] = {"properties": properties}
    if sku is not None:
        body["sku"] = {"name": sku.value}
    if tags is not None:
        body["tags"] = _tags(tags)
    if body == {"properties": {}}:
        fail(
            "nothing to change: give --sku, --storage-quota, --admin-enabled, "
            "--anonymous-pull-enabled, --public-network-enabled, --default-action or --tags"
        )
    _show_one(api.call("PATCH", url, json=body), output)


@command(registry, "show")
def show(api: Management, name: RegistryName, output: OutputOption = Output.table) -> None:
    """A registry's properties."""
    _show_one(api.registry(name), output)


@command(registry, "list")
def list_registries(
    api: Management,
    resource_group: Annotated[
        str | None, typer.Option("--resource-group", "-g", help="Only this resource group.")
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """The registries you may read, in every subscription the server lists (or in
    --subscription), or in one resource group."""
    if resource_group is None:
        _show(api.registries(), output)
    else:
        _show(api.values(api.group_url(resource_group)), output)


@command(registry, "delete")
def delete(api: Management, name: RegistryName, yes: YesOption = False) -> None:
    """Delete a registry with all its repositories, images and settings."""
    if not yes and not typer.confirm(f"This deletes the registry {name} and all its images."):
        fail("nothing deleted (pass --yes to skip this question)")
    url = api.registry_url(name)
    with spinner(f"deleting {name}"):
        api.call("DELETE", url)
    console.print(f"deleted registry {name}")


# -- the admin user, usage ------------------------------------------------------------------

credential = typer.Typer(no_args_is_help=True, help="The admin user's credentials (az acr).")


def _credentials(shown: dict[str, Any], output: Output) -> None:
    if output is Output.json:
        print_json(shown)
        return
    console.print(f"username: {shown['username']}")
    for password in shown["passwords"]:
        console.print(f"{password['name']}: {password['value']}", soft_wrap=True)


@command(credential, "show")
def credential_show(
    api: Management, name: RegistryName, output: OutputOption = Output.table
) -> None:
    """The admin user's name and passwords."""
    _credentials(api.call("POST", f"{api.registry_url(name)}/listCredentials"), output)


class PasswordName(StrEnum):
    password = "password"
    password2 = "password2"


@command(credential, "renew")
def credential_renew(
    api: Management,
    name: RegistryName,
    password_name: Annotated[
        PasswordName, typer.Option("--password-name", help="password or password2.")
    ],
    output: OutputOption = Output.table,
) -> None:
    """Regenerate one of the admin user's passwords."""
    url = f"{api.registry_url(name)}/regenerateCredential"
    _credentials(api.call("POST", url, json={"name": password_name.value}), output)


def show_usage(api: Management, name: RegistryName, output: OutputOption = Output.table) -> None:
    """What the registry uses of its tier's limits (storage in bytes, webhooks, IP rules,
    tokens, scope maps, ...); a limit of -1 is unlimited."""
    found = api.registry(name)
    usages = api.call("GET", f"{found['id']}/listUsages")
    if output is Output.json:
        print_json(usages)
        return
    console.print(f"registry {found['name']}: sku {found['sku']['name']}")
    table = Table("NAME", "LIMIT", "CURRENT VALUE", "UNIT")
    for line in usages["value"]:
        table.add_row(line["name"], str(line["limit"]), str(line["currentValue"]), line["unit"])
    console.print(table)


# -- network rules --------------------------------------------------------------------------

network_rule = typer.Typer(
    no_args_is_help=True,
    help="IP rules of a registry's firewall: who may connect when the default action is "
    "Deny (az acr network-rule).",
)
AddressOption = Annotated[
    str,
    typer.Option(
        "--ip-address",
        help="An IPv4 or IPv6 address, or a CIDR block (203.0.113.0/24).",
        show_default=False,
    ),
]


def _network(rule: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | str:
    """A rule as a network, so that 10.0.0.1 and 10.0.0.1/32 are one rule."""
    try:
        return ipaddress.ip_network(rule, strict=False)
    except ValueError:
        return rule


def _rules(registry: dict[str, Any]) -> dict[str, Any]:
    return registry["properties"]["networkRuleSet"]


def _show_rules(registry: dict[str, Any], output: Output) -> None:
    rules = _rules(registry)
    if output is Output.json:
        print_json(rules)
        return
    access = registry["properties"]["publicNetworkAccess"]
    console.print(
        f"registry {registry['name']}: public network access {access}, default action "
        f"{rules['defaultAction']}"
    )
    table = Table("rule", "action")
    for rule in rules["ipRules"]:
        table.add_row(rule["value"], rule["action"])
    console.print(table)


def _set_rules(api: Management, name: str, ip_rules: list[dict[str, str]]) -> dict[str, Any]:
    rules = {**_rules(api.registry(name)), "ipRules": ip_rules}
    body = {"properties": {"networkRuleSet": rules}}
    return api.call("PATCH", api.registry_url(name), json=body)


@command(network_rule, "add")
def rule_add(
    api: Management,
    name: RegistryName,
    ip_address: AddressOption,
    output: OutputOption = Output.table,
) -> None:
    """Allow an address or CIDR block to reach the registry."""
    current = _rules(api.registry(name))["ipRules"]
    updated = _set_rules(api, name, [*current, {"action": "Allow", "value": ip_address}])
    _show_rules(updated, output)
    if output is Output.table and _rules(updated)["defaultAction"] == DefaultAction.Allow:
        console.print(
            "note: the default action is Allow, so everyone may connect; rules limit access "
            f"once it is Deny: dockyard registry update -n {name} --default-action Deny"
        )


@command(network_rule, "remove")
def rule_remove(
    api: Management,
    name: RegistryName,
    ip_address: AddressOption,
    output: OutputOption = Output.table,
) -> None:
    """Remove an allow rule."""
    current = _rules(api.registry(name))["ipRules"]
    kept = [rule for rule in current if _network(rule["value"]) != _network(ip_address)]
    if len(kept) == len(current):
        fail(f"registry {name} has no rule {ip_address} (dockyard network-rule list shows them)")
    _show_rules(_set_rules(api, name, kept), output)


@command(network_rule, "list")
def rule_list(api: Management, name: RegistryName, output: OutputOption = Output.table) -> None:
    """The registry's network settings and allow rules."""
    _show_rules(api.registry(name), output)


def register(app: typer.Typer) -> None:
    app.add_typer(registry, name="registry", rich_help_panel=ONLINE)
    app.add_typer(credential, name="credential", rich_help_panel=ONLINE)
    app.add_typer(network_rule, name="network-rule", rich_help_panel=ONLINE)
    command(app, "show-usage", rich_help_panel=ONLINE)(show_usage)
