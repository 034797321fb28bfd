"""A throwaway HTTPS Git server on loopback for the token tests: `git http-backend` behind
Basic authentication.

    python3 https_git.py ROOT CERT KEY

serves the repositories under ROOT on a free 127.0.0.1 port (printed on the first line of
standard output) with the certificate CERT and key KEY. Requests must carry the user
GIT_TEST_USER (default `x-access-token`) and the token from the environment variable
GIT_TEST_TOKEN; others get 401.
Every request is logged to standard error without its credentials.
"""

import base64
import http.server
import os
import ssl
import subprocess
import sys

ROOT, CERT, KEY = sys.argv[1], sys.argv[2], sys.argv[3]
TOKEN = os.environ["GIT_TEST_TOKEN"]
USER = os.environ.get("GIT_TEST_USER", "x-access-token")
EXPECTED = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("https_git: " + (fmt % args) + "\n")

    def do_GET(self):
        self.git()

    def do_POST(self):
        self.git()

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def git(self):
        data = self.body()
        if self.headers.get("Authorization") != EXPECTED:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ.get("PATH", ""),
            "GIT_PROJECT_ROOT": ROOT,
            "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": USER,
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(data)),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
        }
        out = subprocess.run(
            ["git", "http-backend"], input=data, env=env, capture_output=True
        ).stdout
        head, _, content = out.partition(b"\r\n\r\n")
        if not _:
            head, _, content = out.partition(b"\n\n")
        status = 200
        headers = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(CERT, KEY)
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
