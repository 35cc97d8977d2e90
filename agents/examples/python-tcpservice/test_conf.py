"""Unit tests of the agent's argument parsing, run by plain CPython (no
component needed): python3 -m unittest discover -s agents/examples/python-tcpservice
"""

import unittest

import conf


def parse(**kw):
    return conf.parse(list(kw.items()))


class ParseTest(unittest.TestCase):
    def test_minimal_and_defaults(self):
        c = parse(target="10.0.0.1:80")
        self.assertEqual((c.target, c.port, c.pidfile), ("10.0.0.1:80", 80, None))
        self.assertEqual((c.start_timeout, c.stop_timeout, c.command), (10, 5, "server"))

    def test_command_names(self):
        self.assertEqual(parse(target="10.0.0.1:80", command="ignore-term").command,
                         "ignore-term")
        for bad in ["", "/bin/sh", "a b", "x;y"]:
            with self.subTest(command=bad), self.assertRaises(conf.ConfError):
                parse(target="10.0.0.1:80", command=bad)

    def test_ipv6_target_normalised(self):
        c = parse(target="[fd77:0::10]:8080")
        self.assertEqual((c.target, c.host, c.port), ("[fd77::10]:8080", "fd77::10", 8080))

    def test_bad_targets(self):
        for t in ["10.0.0.1", "10.0.0.1:", "10.0.0.1:0", "10.0.0.1:65536", "host:80",
                  "fd77::10:80", "[fd77::10]80", "[fd77::10", "0.0.0.0:80", "[::]:80",
                  "224.0.0.1:80", "10.0.0.1:-1", "10.0.0.1:8o"]:
            with self.subTest(target=t), self.assertRaises(conf.ConfError):
                parse(target=t)

    def test_paths(self):
        for p in ["run/x.pid", "/run/../etc/x.pid"]:
            with self.subTest(pidfile=p), self.assertRaises(conf.ConfError):
                parse(target="10.0.0.1:80", pidfile=p)
        self.assertEqual(parse(target="10.0.0.1:80", pidfile="/run/x.pid").pidfile, "/run/x.pid")
        # An empty pidfile is the same as none.
        self.assertIsNone(parse(target="10.0.0.1:80", pidfile="").pidfile)

    def test_timeouts(self):
        self.assertEqual(parse(target="10.0.0.1:80", start_timeout="15",
                               stop_timeout="1").start_timeout, 15)
        for k, v in [("start_timeout", "0"), ("start_timeout", "16"), ("start_timeout", "ten"),
                     ("stop_timeout", "11"), ("stop_timeout", "1.5"), ("stop_timeout", "")]:
            with self.subTest(**{k: v}), self.assertRaises(conf.ConfError):
                parse(target="10.0.0.1:80", **{k: v})

    def test_required_unknown_and_duplicate(self):
        with self.assertRaises(conf.ConfError):
            parse(pidfile="/run/x.pid")
        with self.assertRaises(conf.ConfError):
            parse(target="10.0.0.1:80", program="/usr/bin/python3")
        with self.assertRaises(conf.ConfError):
            conf.parse([("target", "10.0.0.1:80"), ("target", "10.0.0.2:80")])

    def test_declared_order(self):
        self.assertEqual(conf.PARAM_NAMES,
                         ["target", "pidfile", "start_timeout", "stop_timeout", "command"])


if __name__ == "__main__":
    unittest.main()
