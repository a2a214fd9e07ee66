"""`scalper terminal-server`: serve this host's MetaTrader 5 terminal to scalper elsewhere."""

from __future__ import annotations

import typer

from scalper.cli.common import err
from scalper.cli.typer_app import app


@app.command("terminal-server")
def terminal_server(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on. Keep loopback and reach it "
                                                         "through an SSH/WireGuard tunnel or a VPN."),
    port: int = typer.Option(18812, "--port", min=0, max=65535, help="Port to listen on (0: any free port)."),
    token_env: str = typer.Option("SCALPER_BRIDGE_TOKEN", "--token-env", metavar="NAME",
                                  help="Environment variable holding the shared token (same name or value "
                                       "as the account's terminal.token_env on the scalper side)."),
    tls_cert: str | None = typer.Option(None, "--tls-cert", metavar="PEM", help="TLS: this server's certificate."),
    tls_key: str | None = typer.Option(None, "--tls-key", metavar="PEM", help="TLS: this server's private key."),
    tls_client_ca: str | None = typer.Option(None, "--tls-client-ca", metavar="PEM",
                                                help="TLS: the CA that signed the client certificates "
                                                     "(clients without one are refused)."),
) -> int:
    """Serve this host's MetaTrader 5 terminal to scalper on another machine (the terminal bridge).

    Run it where the MetaTrader5 package imports: the terminal's Windows host, or Wine Python.
    Clients authenticate with the token and may make only the calls the mt5 broker and feed need;
    one server serves one terminal, calls one at a time. Stop it with Ctrl-C.
    """
    from scalper.bridge.server import serve

    serve(host=host, port=port, token_env=token_env, tls_cert=tls_cert, tls_key=tls_key,
          tls_client_ca=tls_client_ca, announce=lambda line: err.print(line, highlight=False, soft_wrap=True))
    return 0
