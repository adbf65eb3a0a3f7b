"""The deployment files under deploy/ (untested templates: no Kubernetes here) at least parse, and
the KeyService replicas' manifests agree with each other and with moss-keyservice: every YAML file
parses; the StatefulSet runs 3 replicas behind a headless Service (per-pod names, published before
ready, for joins) and a client Service; readiness on /healthz over HTTPS; store etcd with three
endpoints; the replica port the same in the setting, the container and the headless Service;
ordinals above 0 join ordinal 0's replica port; the recovery public key is a file of the mounted
Secret; every MOSS_KEYSERVICE_* variable names a moss-keyservice setting and is passed into the
enclave by the Gramine manifest. Run by ctest with Debian's /usr/bin/python3 (python3-yaml)."""
import pathlib
import re
import sys
import unittest

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def keyservice_settings():
    """MOSS_KEYSERVICE_* names of the settings moss-keyservice declares (docs/configuration.md)."""
    text = (ROOT / "src" / "keyservice" / "keyservice_settings.cc").read_text()
    keys = re.findall(r'\{"keyservice\.([a-z0-9-]+)"', text)
    return {"MOSS_KEYSERVICE_" + k.upper().replace("-", "_") for k in keys}


class DeployFilesTest(unittest.TestCase):
    def test_every_yaml_file_parses(self):
        files = sorted(list(DEPLOY.rglob("*.yaml")) + list(DEPLOY.rglob("*.yml")))
        self.assertGreaterEqual(len(files), 3)
        for f in files:
            with self.subTest(file=str(f.relative_to(ROOT))):
                docs = [d for d in yaml.safe_load_all(f.read_text()) if d is not None]
                self.assertTrue(docs)


class KeyServiceReplicasTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        docs = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "keyservice-replicas.yaml").read_text()))
        cls.by_kind = {}
        for d in docs:
            cls.by_kind.setdefault(d["kind"], []).append(d)
        cls.sts = cls.by_kind["StatefulSet"][0]
        cls.pod = cls.sts["spec"]["template"]["spec"]
        cls.container = cls.pod["containers"][0]
        cls.env = {e["name"]: e.get("value") for e in cls.container["env"]}

    def service(self, name):
        found = [s for s in self.by_kind["Service"] if s["metadata"]["name"] == name]
        self.assertEqual(len(found), 1, name)
        return found[0]

    def test_three_replicas_behind_a_headless_and_a_client_service(self):
        spec = self.sts["spec"]
        self.assertEqual(spec["replicas"], 3)
        self.assertEqual(spec.get("podManagementPolicy"), "OrderedReady")
        labels = spec["template"]["metadata"]["labels"]
        self.assertEqual(spec["selector"]["matchLabels"], labels)
        headless = self.service(spec["serviceName"])
        self.assertEqual(headless["spec"]["clusterIP"], "None")
        self.assertTrue(headless["spec"]["publishNotReadyAddresses"])
        clients = [s for s in self.by_kind["Service"] if s["metadata"]["name"] != spec["serviceName"]]
        self.assertEqual(len(clients), 1)
        for s in (headless, clients[0]):
            self.assertEqual(s["spec"]["selector"], labels)
        self.assertEqual({p["port"] for p in clients[0]["spec"]["ports"]}, {7443})

    def test_readiness_on_the_health_endpoint(self):
        probe = self.container["readinessProbe"]["httpGet"]
        self.assertEqual(probe["path"], "/healthz")
        self.assertEqual(probe["scheme"], "HTTPS")
        self.assertEqual(probe["port"], int(self.env["MOSS_KEYSERVICE_LISTEN"].rsplit(":", 1)[1]))

    def test_etcd_store_and_replica_port(self):
        self.assertEqual(self.env["MOSS_KEYSERVICE_STORE"], "etcd")
        endpoints = self.env["MOSS_KEYSERVICE_ETCD_ENDPOINTS"].split(",")
        self.assertEqual(len(endpoints), 3)
        for e in endpoints:
            self.assertRegex(e, r"^https?://[a-z0-9.-]+:\d+$")
        self.assertTrue(self.env["MOSS_KEYSERVICE_ETCD_PREFIX"].endswith("/"))
        replica_port = int(self.env["MOSS_KEYSERVICE_REPLICA_LISTEN"].rsplit(":", 1)[1])
        self.assertIn(replica_port, {p["containerPort"] for p in self.container["ports"]})
        headless = self.service(self.sts["spec"]["serviceName"])
        self.assertIn(replica_port, {p["port"] for p in headless["spec"]["ports"]})

    def test_ordinals_above_zero_join_ordinal_zero(self):
        script = "\n".join(self.container["args"])
        name, service = self.sts["metadata"]["name"], self.sts["spec"]["serviceName"]
        replica_port = self.env["MOSS_KEYSERVICE_REPLICA_LISTEN"].rsplit(":", 1)[1]
        m = re.search(r'if \[ "\$ordinal" != "0" \]; then\s+export MOSS_KEYSERVICE_JOIN="([^"]+)"', script)
        self.assertIsNotNone(m, script)
        self.assertEqual(m.group(1), f"https://{name}-0.{service}.{self.sts['metadata']['namespace']}"
                                     f".svc.cluster.local:{replica_port}")
        self.assertIn('ordinal="${HOSTNAME##*-}"', script)

    def test_recovery_public_key_from_the_secret(self):
        path = pathlib.PurePosixPath(self.env["MOSS_KEYSERVICE_RECOVERY_PUBLIC_KEY"])
        mounts = {m["name"]: m["mountPath"] for m in self.container["volumeMounts"]}
        secret_volumes = [v for v in self.pod["volumes"] if "secret" in v]
        self.assertEqual(len(secret_volumes), 1)
        self.assertEqual(mounts[secret_volumes[0]["name"]], str(path.parent))
        state = [t["metadata"]["name"] for t in self.sts["spec"]["volumeClaimTemplates"]]
        self.assertEqual(mounts[state[0]], "/var/lib/moss-keyservice")

    def test_settings_exist_and_reach_the_enclave(self):
        known = keyservice_settings()
        self.assertIn("MOSS_KEYSERVICE_ETCD_ENDPOINTS", known)
        manifest = (DEPLOY / "gramine" / "moss-keyservice.manifest.template").read_text()
        in_enclave = set(re.findall(r"^loader\.env\.(MOSS_KEYSERVICE_[A-Z_]+)", manifest, re.M))
        names = set(self.env) | {"MOSS_KEYSERVICE_JOIN"}
        for name in sorted(names):
            with self.subTest(variable=name):
                self.assertIn(name, known)
                self.assertIn(name, in_enclave)
        for name in sorted(in_enclave):
            with self.subTest(manifest_variable=name):
                self.assertIn(name, known)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=1).result
    sys.exit(0 if result.wasSuccessful() else 1)
