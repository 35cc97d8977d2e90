"""Unit tests of the agent's argument parsing, run by plain CPython (no
component needed): python3 -m unittest discover -s agents/examples/python-tcpservice
"""

import unittest

import conf


def parse(**kw):
    return conf.parse(list(kw.items()))


class ParseTest(unittest.TestCase):
    def test_minimal_and_defaults(self):
        c = parse(program="/usr/sbin/x", target="10.0.0.1:80")
        self.assertEqual((c.program, c.target, c.port, c.args, c.pidfile),
                         ("/usr/sbin/x", "10.0.0.1:80", 80, [], None))
        self.assertEqual((c.start_timeout, c.stop_timeout), (10, 5))

    def test_args_blanks_or_commas(self):
        self.assertEqual(parse(program="/p", target="10.0.0.1:80",
                               args="-m http.server  8080").args,
                         ["-m", "http.server", "8080"])
        self.assertEqual(parse(program="/p", target="10.0.0.1:80",
                               args="-m,http.server,,8080").args,
                         ["-m", "http.server", "8080"])

    def test_ipv6_target_normalised(self):
        c = parse(program="/p", target="[fd77:0::10]:8080")
        self.assertEqual((c.target, c.host, c.port), ("[fd77::10]:8080", "fd77::10", 8080))

    def test_bad_targets(self):
        for t in ["10.0.0.1", "10.0.0.1:", "10.0.0.1:0", "10.0.0.1:65536", "host:80",
                  "fd77::10:80", "[fd77::10]80", "[fd77::10", "0.0.0.0:80", "[::]:80",
                  "224.0.0.1:80", "10.0.0.1:-1", "10.0.0.1:8o"]:
            with self.subTest(target=t), self.assertRaises(conf.ConfError):
                parse(program="/p", target=t)

    def test_paths(self):
        for p in ["usr/sbin/x", "/usr/../bin/sh", ""]:
            with self.subTest(program=p), self.assertRaises(conf.ConfError):
                parse(program=p, target="10.0.0.1:80")
        with self.assertRaises(conf.ConfError):
            parse(program="/p", target="10.0.0.1:80", pidfile="run/x.pid")
        self.assertEqual(parse(program="/p", target="10.0.0.1:80", pidfile="/run/x.pid").pidfile,
                         "/run/x.pid")
        # An empty pidfile is the same as none.
        self.assertIsNone(parse(program="/p", target="10.0.0.1:80", pidfile="").pidfile)

    def test_timeouts(self):
        self.assertEqual(parse(program="/p", target="10.0.0.1:80", start_timeout="15",
                               stop_timeout="1").start_timeout, 15)
        for k, v in [("start_timeout", "0"), ("start_timeout", "16"), ("start_timeout", "ten"),
                     ("stop_timeout", "11"), ("stop_timeout", "1.5"), ("stop_timeout", "")]:
            with self.subTest(**{k: v}), self.assertRaises(conf.ConfError):
                parse(program="/p", target="10.0.0.1:80", **{k: v})

    def test_required_unknown_and_duplicate(self):
        with self.assertRaises(conf.ConfError):
            parse(target="10.0.0.1:80")
        with self.assertRaises(conf.ConfError):
            parse(program="/p")
        with self.assertRaises(conf.ConfError):
            parse(program="/p", target="10.0.0.1:80", port="80")
        with self.assertRaises(conf.ConfError):
            conf.parse([("program", "/p"), ("target", "10.0.0.1:80"), ("program", "/q")])

    def test_declared_order(self):
        self.assertEqual(conf.PARAM_NAMES,
                         ["program", "target", "args", "pidfile", "start_timeout", "stop_timeout"])


if __name__ == "__main__":
    unittest.main()
