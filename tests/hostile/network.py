# Tries the network: TCP and UDP to a server on the host's loopback, a DNS lookup, and the
# Docker socket (talking to it would mean root on the host). Re-raises the last error.
import torch

socket = torch.serialization.sys.modules["socket"]
TOKEN = "hostile-token"
PORT = 47011


def compute_reward(pole_angle: torch.Tensor):
    error = None
    for path in ("/var/run/docker.sock", "/run/docker.sock"):
        try:
            unix = socket.socket(socket.AF_UNIX)
            unix.connect(path)
            unix.sendall(b"GET /containers/json HTTP/1.0\r\n\r\n")
            print("docker socket answered:", unix.recv(200))
        except OSError as exc:
            error = exc
    attempts = [
        lambda: socket.create_connection(("127.0.0.1", PORT), timeout=2).sendall(TOKEN.encode()),
        lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(TOKEN.encode(), ("127.0.0.1", PORT)),
        lambda: socket.getaddrinfo("example.com", 443),
    ]
    for attempt in attempts:
        try:
            attempt()
        except OSError as exc:
            error = exc
    if error is not None:
        raise error
    return pole_angle, {}
