"""`pip install ./clients/python` works offline with Debian's pip and setuptools, and the
installed package (with its pinned Intel root) imports and verifies a quote."""
import subprocess
import sys

from support import ATTESTATION_DATA, ROOT, TempDirCase


class PipInstall(TempDirCase):
    def test_offline_install_and_use(self):
        import shutil
        target, src = self.tmp / "site", self.tmp / "src"
        # from a copy: setuptools writes build/ and *.egg-info next to the sources
        shutil.copytree(ROOT / "clients" / "python", src,
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests"))
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation",
                            "--no-index", "--no-deps", "--quiet", "--target", str(target),
                            str(src)],
                           capture_output=True, text=True, timeout=180,
                           env={"PATH": "/usr/bin:/bin", "HOME": str(self.tmp),
                                "PIP_NO_CACHE_DIR": "1"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue((target / "moss_client" / "intel-sgx-root-ca.pem").exists())
        code = ("import moss_client, sys; "
                f"c = moss_client.verify_dcap_quote(open({str(ATTESTATION_DATA / 'tdx-v4-google-1.quote')!r}, 'rb').read()); "
                "print(moss_client.__file__, c.tee)")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=60, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
                           cwd=str(self.tmp))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(str(target), r.stdout)
        self.assertIn("tdx", r.stdout)
