"""The protocol registry file: what it must contain, and the errors a bad one gets."""

import pytest

from scans.discovery.registry import DEFAULT_PATH, RegistryError, default_registry, load_registry

REQUIRED = {"http", "ssh", "redis", "postgresql", "mysql", "memcached", "docker-api", "prometheus-metrics",
            "ethereum-jsonrpc", "sui-jsonrpc", "filecoin-lotus"}

MINIMAL = """
version: 1
probes:
  banner: {kind: banner}
protocols:
  - name: gopher
    ports: [70]
    signatures:
      - {probe: banner, regex: '^i', weight: 0.9}
"""


def test_the_bundled_registry_loads_with_every_required_protocol():
    registry = default_registry()

    assert REQUIRED <= set(registry.by_name)
    assert registry.protocol("ethereum-jsonrpc").probes == ("eth-chainid", "web3-client-version")
    assert registry.probes["redis-ping"].payload == b"*1\r\n$4\r\nPING\r\n"
    assert [p.name for p in registry.for_port(6379)] == ["redis"]


def test_a_minimal_file_loads():
    registry = load_registry(text=MINIMAL)

    assert registry.protocol("gopher").ports == (70,)


@pytest.mark.parametrize("change,message", [
    (("probe: banner, regex", "probe: bannr, regex"), "protocols[0] (gopher): signatures[0]: unknown probe 'bannr'"),
    (("regex: '^i'", "regex: '^(i'"), "signatures[0]: regex: bad regular expression"),
    (("weight: 0.9", "weight: 1.5"), "signatures[0]: weight must be a number from 0 to 1"),
    (("ports: [70]", "ports: [70000]"), "protocols[0] (gopher): ports must be a list of integers 1-65535"),
    (("kind: banner", "kind: telnet"), "probes.banner: must be a mapping whose kind is one of"),
    (("version: 1", "version: 2"), "version must be 1"),
    (("name: gopher", "name: Gopher!"), "name must be lower-case"),
    (("regex: '^i', weight", "json: {path: a, exists: true}, weight"), "json tests need an http or jsonrpc probe"),
    (("    ports: [70]", "    ports: [70]\n    colour: blue"), "unknown key(s) colour"),
])
def test_a_bad_file_fails_with_an_error_naming_the_place(change, message):
    old, new = change

    with pytest.raises(RegistryError) as error:
        load_registry(text=MINIMAL.replace(old, new))

    assert message in str(error.value)


def test_a_protocol_defined_twice_is_refused():
    doubled = MINIMAL + MINIMAL.split("protocols:\n", 1)[1]

    with pytest.raises(RegistryError, match="defined twice: gopher"):
        load_registry(text=doubled)


def test_broken_yaml_and_missing_files_say_so(tmp_path):
    with pytest.raises(RegistryError, match="not valid YAML"):
        load_registry(text="protocols: [")
    with pytest.raises(RegistryError, match="cannot read"):
        load_registry(tmp_path / "missing.yaml")


def test_the_bundled_file_is_the_default_path():
    assert DEFAULT_PATH.name == "protocols.yaml" and DEFAULT_PATH.exists()
