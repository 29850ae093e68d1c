"""`dockyard repository list|show|show-tags|show-manifests|update|untag|delete`, modelled
on `az acr repository`: a running registry's repositories, tags and manifests through
`/acr/v1/` (cli/remote.py), never its database."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table

from dockyard.cli.local import ONLINE, console, fail
from dockyard.cli.remote import (
    CAFileOption,
    InsecureOption,
    NameOption,
    Output,
    OutputOption,
    PasswordOption,
    RemoteRegistry,
    Switch,
    UsernameOption,
    locks,
    print_json,
)

RepositoryOption = Annotated[
    str | None, typer.Option("--repository", help="Repository name, e.g. team/app.")
]
ImageOption = Annotated[
    str | None, typer.Option("--image", "-t", help="REPOSITORY:TAG or REPOSITORY@DIGEST.")
]
TopOption = Annotated[int | None, typer.Option(min=1, help="At most this many items.")]
DetailOption = Annotated[bool, typer.Option(help="Every attribute, not only the names.")]


class OrderBy(StrEnum):
    time_desc = "time_desc"
    time_asc = "time_asc"


OrderByOption = Annotated[
    OrderBy | None, typer.Option(help="By last update: time_desc (newest first) or time_asc.")
]
_ORDERBY = {OrderBy.time_desc: "timedesc", OrderBy.time_asc: "timeasc"}


def _image(image: str) -> tuple[str, str, bool]:
    """`repo:tag` or `repo@digest` -> (repository, reference, is a digest)."""
    repository, at, digest = image.partition("@")
    if at:
        return repository, digest, True
    repository, colon, tag = image.rpartition(":")
    if not colon or not repository or "/" in tag:
        fail(f"--image {image!r} names no tag: give REPOSITORY:TAG or REPOSITORY@DIGEST")
    return repository, tag, False


def _path(image: str) -> tuple[str, str]:
    """The `/acr/v1` path of a tag or manifest, and its repository."""
    repository, reference, by_digest = _image(image)
    kind = "_manifests" if by_digest else "_tags"
    return f"/acr/v1/{repository}/{kind}/{reference}", repository


def _target(repository: str | None, image: str | None) -> tuple[str, str]:
    """The `/acr/v1` path of `--repository` or `--image` (exactly one), and the repository."""
    if (repository is None) == (image is None):
        fail("give --repository or --image (one of them)")
    if image is not None:
        return _path(image)
    return f"/acr/v1/{repository}", str(repository)


def _scope(repository: str, action: str) -> str:
    return f"repository:{repository}:{action}"


def _attributes(shown: dict[str, Any]) -> None:
    """One object (a repository, a tag or a manifest) as a two-column table."""
    inner = shown.get("tag") or shown.get("manifest") or shown
    table = Table("attribute", "value", show_header=False)
    for key, value in ({**shown, **inner}).items():
        if key in ("tag", "manifest"):
            continue
        if key == "changeableAttributes":
            value = locks(value) or "none (all enabled)"
            key = "locks"
        elif isinstance(value, list):
            value = ", ".join(
                str(item.get("digest", item)) if isinstance(item, dict) else item for item in value
            )
        table.add_row(key, str(value))
    console.print(table)


def list_repositories(
    name: NameOption,
    top: TopOption = None,
    output: OutputOption = Output.table,
    username: UsernameOption = None,
    password: PasswordOption = None,
    insecure: InsecureOption = False,
    ca_file: CAFileOption = None,
) -> None:
    """List the repositories (`_catalog`, every page)."""
    with RemoteRegistry(name, username, password, insecure, ca_file) as remote:
        names = remote.pages("/acr/v1/_catalog", "repositories", "registry:catalog:*", {}, top)
    if output is Output.json:
        print_json(names)
        return
    table = Table("Repository")
    for repository in names:
        table.add_row(repository)
    console.print(table)


def show(
    name: NameOption,
    repository: RepositoryOption = None,
    image: ImageOption = None,
    output: OutputOption = Output.table,
    username: UsernameOption = None,
    password: PasswordOption = None,
    insecure: InsecureOption = False,
    ca_file: CAFileOption = None,
) -> None:
    """Show a repository's attributes, or with --image a tag's or a manifest's."""
    path, repo = _target(repository, image)
    with RemoteRegistry(name, username, password, insecure, ca_file) as remote:
        shown = remote.call("GET", path, _scope(repo, "metadata_read")).json()
    if output is Output.json:
        print_json(shown)
    else:
        _attributes(shown)


def show_tags(
    name: NameOption,
    repository: Annotated[str, typer.Option("--repository", help="Repository name.")],
    orderby: OrderByOption = None,
    top: TopOption = None,
    detail: DetailOption = False,
    output: OutputOption = Output.table,
    username: UsernameOption = None,
    password: PasswordOption = None,
    insecure: InsecureOption = False,
    ca_file: CAFileOption = None,
) -> None:
    """List a repository's tags (`_tags`)."""
    params = {"orderby": _ORDERBY[orderby]} if orderby else {}
    with RemoteRegistry(name, username, password, insecure, ca_file) as remote:
        tags = remote.pages(
            f"/acr/v1/{repository}/_tags", "tags", _scope(repository, "metadata_read"), params, top
        )
    if output is Output.json:
        print_json(tags if detail else [tag["name"] for tag in tags])
        return
    columns = ("Tag", "Digest", "Last update", "Locks") if detail else ("Tag",)
    table = Table(*columns)
    for tag in tags:
        row = (
            tag["name"],
            tag["digest"],
            tag["lastUpdateTime"],
            locks(tag["changeableAttributes"]),
        )
        table.add_row(*row[: len(columns)])
    console.print(table)


def show_manifests(
    name: NameOption,
    repository: Annotated[str, typer.Option("--repository", help="Repository name.")],
    orderby: OrderByOption = None,
    top: TopOption = None,
    detail: DetailOption = False,
    output: OutputOption = Output.table,
    username: UsernameOption = None,
    password: PasswordOption = None,
    insecure: InsecureOption = False,
    ca_file: CAFileOption = None,
) -> None:
    """List a repository's manifests (`_manifests`), with their tags."""
    params = {"orderby": _ORDERBY[orderby]} if orderby else {}
    with RemoteRegistry(name, username, password, insecure, ca_file) as remote:
        manifests = remote.pages(
            f"/acr/v1/{repository}/_manifests",
            "manifests",
            _scope(repository, "metadata_read"),
            params,
            top,
        )
    if output is Output.json:
        brief = ("digest", "tags", "createdTime", "lastUpdateTime")
        print_json(manifests if detail else [{k: m[k] for k in brief} for m in manifests])
        return
    columns = ["Digest", "Tags", "Last update"]
    if detail:
        columns += ["Platform", "Size", "Media type", "Locks"]
    table = Table(*columns)
    for manifest in manifests:
        platform = "/".join(filter(None, (manifest.get("os"), manifest.get("architecture"))))
        row = (
            manifest["digest"],
            ", ".join(manifest["tags"]),
            manifest["lastUpdateTime"],
            platform,
            str(manifest["imageSize"]),
            manifest["mediaType"],
            locks(manifest["changeableAttributes"]),
        )
        table.add_row(*row[: len(columns)])
    console.print(table)


def _lock(flag: str) -> Any:
    return typer.Option(f"--{flag}", help=f"true or false: allow {flag.removesuffix('-enabled')}s.")


def update(
    name: NameOption,
    repository: RepositoryOption = None,
    image: ImageOption = None,
    write_enabled: Annotated[Switch | None, _lock("write-enabled")] = None,
    delete_enabled: Annotated[Switch | None, _lock("delete-enabled")] = None,
    read_enabled: Annotated[Switch | None, _lock("read-enabled")] = None,
    list_enabled: Annotated[Switch | None, _lock("list-enabled")] = None,
    output: OutputOption = Output.table,
    username: UsernameOption = None,
    password: PasswordOption = None,
    insecure: InsecureOption = False,
    ca_file: CAFileOption = None,
) -> None:
    """Change the locks (changeable attributes) of a repository, a tag or a manifest."""
    changes = {
        key: value is Switch.true
        for key, value in (
            ("writeEnabled", write_enabled),
            ("deleteEnabled", delete_enabled),
            ("readEnabled", read_enabled),
            ("listEnabled", list_enabled),
        )
        if value is not None
    }
    if not changes:
        fail(
            "nothing to change: give --write-enabled, --delete-enabled, --read-enabled "
            "or --list-enabled true|false"
        )
    path, repo = _target(repository, image)
    with RemoteRegistry(name, username, password, insecure, ca_file) as remote:
        shown = remote.call("PATCH", path, _scope(repo, "metadata_write"), json=changes).json()
    if output is Output.json:
        print_json(shown)
    else:
        _attributes(shown)


def untag(
    name: NameOption,
    image: Annotated[str, typer.Option("--image", "-t", help="REPOSITORY:TAG to remove.")],
    username: UsernameOption = None,
    password: PasswordOption = None,
    insecure: InsecureOption = False,
    ca_file: CAFileOption = None,
) -> None:
    """Remove a tag; the manifest it names stays."""
    repo, tag, by_digest = _image(image)
    if by_digest:
        fail("untag takes REPOSITORY:TAG; to delete a manifest use repository delete --image")
    with RemoteRegistry(name, username, password, insecure, ca_file) as remote:
        remote.call("DELETE", f"/acr/v1/{repo}/_tags/{tag}", _scope(repo, "delete"))
    console.print(f"untagged {repo}:{tag}")


def delete(
    name: NameOption,
    repository: RepositoryOption = None,
    image: ImageOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    output: OutputOption = Output.table,
    username: UsernameOption = None,
    password: PasswordOption = None,
    insecure: InsecureOption = False,
    ca_file: CAFileOption = None,
) -> None:
    """Delete a repository, or with --image a manifest and all its tags.

    REPOSITORY:TAG deletes the manifest the tag names, as az does; to remove only the
    tag, use untag."""
    path, repo = _target(repository, image)
    what = (
        f"the repository {repo} and all its images"
        if image is None
        else (f"the manifest {image} names and all its tags")
    )
    if not yes and not typer.confirm(f"This deletes {what}. Are you sure?"):
        fail("nothing deleted (pass --yes to skip this question)")
    with RemoteRegistry(name, username, password, insecure, ca_file) as remote:
        scope = _scope(repo, "delete")
        if image is not None and "/_tags/" in path:
            digest = remote.call("GET", path, _scope(repo, "metadata_read")).json()["tag"]["digest"]
            path = f"/acr/v1/{repo}/_manifests/{digest}"
        response = remote.call("DELETE", path, scope)
    deleted: dict[str, Any] = response.json() if response.content else {}
    if output is Output.json:
        print_json(deleted)
    elif image is None:
        console.print(
            f"deleted {repo}: {len(deleted.get('manifestsDeleted', []))} manifests, "
            f"{len(deleted.get('tagsDeleted', []))} tags"
        )
    else:
        console.print(f"deleted {path.rpartition('/')[2]} from {repo}, with its tags")


def register(app: typer.Typer) -> None:
    repository = typer.Typer(
        no_args_is_help=True,
        help="A running registry's repositories over /acr/v1, as az acr repository.",
    )
    repository.command("list")(list_repositories)
    repository.command("show")(show)
    repository.command("show-tags")(show_tags)
    repository.command("show-manifests")(show_manifests)
    repository.command("update")(update)
    repository.command("untag")(untag)
    repository.command("delete")(delete)
    app.add_typer(repository, name="repository", rich_help_panel=ONLINE)
