"""`dockyard.replication.routed_blobs`: the signed right a blob redirect carries is good
for its host and path until it expires, and for nothing else."""

from __future__ import annotations

from dockyard.replication.routed_blobs import checked, route_key, signed

PATH = "/v2/app/blobs/sha256:" + "a" * 64


def test_a_route_is_good_for_its_path_until_it_expires() -> None:
    key = route_key("peer-secret")
    value = signed(key, "reg.example.com", PATH, now=1000.0)
    assert checked(key, value, PATH, now=1030.0) == "reg.example.com"
    assert checked(key, value, PATH, now=1061.0) is None
    assert checked(key, value, PATH.replace("a", "b"), now=1030.0) is None
    assert checked(route_key("another-secret"), value, PATH, now=1030.0) is None
    host, expiry, mac = value.split("~")
    assert checked(key, f"other.example.com~{expiry}~{mac}", PATH, now=1030.0) is None
    assert checked(key, f"{host}~{int(expiry) + 600}~{mac}", PATH, now=1030.0) is None
    assert checked(key, "nonsense", PATH, now=1030.0) is None
