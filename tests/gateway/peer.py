"""A tiny MCP peer server (FastMCP, streamable HTTP) so peer gateways can be registered for real."""
import argparse

from mcp.server.fastmcp import FastMCP

parser = argparse.ArgumentParser()
parser.add_argument("--name", required=True)
parser.add_argument("--port", type=int, required=True)
args = parser.parse_args()

mcp = FastMCP(args.name, host="127.0.0.1", port=args.port, log_level="WARNING")


@mcp.tool()
def echo(text: str) -> str:
    """Echo the text back."""
    return text


@mcp.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@mcp.prompt()
def greet(name: str) -> str:
    """Greet someone."""
    return f"Hello, {name}!"


@mcp.resource(f"peer://{args.name}/motd")
def motd() -> str:
    """Message of the day."""
    return f"Welcome to {args.name}"


mcp.run(transport="streamable-http")
