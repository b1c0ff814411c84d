"""handler/launcher.py without TorchServe: ports, config, state (the server itself: tests/test_serve.py)."""

import socket

from handler.launcher import Ports, TorchServe, busy_ports, main, write_config


def test_every_port_moves_with_the_base_and_stays_on_loopback(tmp_path):
    ports = Ports.from_base(9080)
    assert list(ports.named().values()) == [9080, 9081, 9082, 9083, 9084]
    props = dict(line.split("=", 1) for line in write_config(ports, tmp_path / "c.properties").read_text().splitlines()
                 if "=" in line and not line.startswith("#"))
    assert props["inference_address"] == "http://127.0.0.1:9080"
    assert props["management_address"] == "http://127.0.0.1:9081"
    assert props["metrics_address"] == "http://127.0.0.1:9082"
    assert (props["grpc_inference_port"], props["grpc_management_port"]) == ("9083", "9084")
    assert props["grpc_inference_address"] == props["grpc_management_address"] == "127.0.0.1"
    assert props["enable_model_api"] == "false"  # the rest of the shipped config is kept


def test_free_ports_are_distinct_and_busy_ones_are_named():
    ports = Ports.free()
    assert len(set(ports.named().values())) == 5 and not {7070, 7071, 8080} & set(ports.named().values())
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports.grpc_management))
        s.listen()
        assert busy_ports(ports) == [("grpc_management", ports.grpc_management)]


def test_stop_without_a_server_says_so(tmp_path, capsys):
    assert TorchServe.from_state(tmp_path) is None
    assert main(["stop", "--build", str(tmp_path)]) == 0
    assert "no TorchServe started by make serve is running" in capsys.readouterr().out
