"""The artifact store contract: content addressing, verification and refs, per blob backend."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel._core.artifacts import ArtifactError, ArtifactStore, BlobBackend
from flywheel.backends.storage.local import LocalBlobBackend


class ArtifactStoreContract:
    """Every blob backend passes these under the content-addressed layer."""

    def backend(self, tmp_path: Path) -> BlobBackend:
        raise NotImplementedError

    def corrupt(self, backend: BlobBackend, key: str) -> None:
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> ArtifactStore:
        return ArtifactStore(self.backend(tmp_path))

    def test_bytes_roundtrip_under_their_sha256(self, store: ArtifactStore) -> None:
        digest = store.put_bytes(b"model weights")
        assert digest == hashlib.sha256(b"model weights").hexdigest()
        assert store.get_bytes(digest) == b"model weights"
        assert store.exists(digest)

    def test_storing_twice_keeps_one_blob(self, store: ArtifactStore) -> None:
        assert store.put_bytes(b"x" * 10) == store.put_bytes(b"x" * 10)

    def test_files_stream_in_and_out_verified(self, store: ArtifactStore,
                                              tmp_path: Path) -> None:
        source = tmp_path / "big.bin"
        source.write_bytes(bytes(range(256)) * 20_000)  # several read chunks
        digest = store.put_file(source)
        out = store.fetch(digest, tmp_path / "out" / "copy.bin")
        assert out.read_bytes() == source.read_bytes()

    def test_a_corrupted_blob_is_refused_before_use(self, store: ArtifactStore,
                                                     tmp_path: Path) -> None:
        digest = store.put_bytes(b"the real bytes")
        self.corrupt(store.backend, f"sha256/{digest[:2]}/{digest[2:]}")
        with pytest.raises(ArtifactError, match="does not match its sha256"):
            store.get_bytes(digest)
        with pytest.raises(ArtifactError, match="does not match"):
            store.fetch(digest, tmp_path / "dest.bin")
        assert not (tmp_path / "dest.bin").exists()

    def test_missing_and_malformed_digests_are_clear(self, store: ArtifactStore) -> None:
        with pytest.raises(ArtifactError, match="no artifact"):
            store.get_bytes("0" * 64)
        with pytest.raises(ArtifactError, match="not a sha256"):
            store.get_bytes("../../etc/passwd")

    def test_refs_point_at_stored_blobs_and_move(self, store: ArtifactStore) -> None:
        first, second = store.put_bytes(b"1"), store.put_bytes(b"2")
        assert store.get_ref("cache/step-a") is None
        store.set_ref("cache/step-a", first)
        store.set_ref("cache/step-a", second)
        assert store.get_ref("cache/step-a") == second
        with pytest.raises(ArtifactError, match="no such artifact"):
            store.set_ref("cache/step-b", "f" * 64)
        with pytest.raises(ArtifactError, match="not a ref name"):
            store.set_ref("../escape", first)

    def test_concurrent_writers_of_one_blob(self, store: ArtifactStore) -> None:
        data = b"shared" * 100_000
        digests: list[str] = []
        threads = [threading.Thread(target=lambda: digests.append(store.put_bytes(data)))
                   for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(digests)) == 1
        assert store.get_bytes(digests[0]) == data

    @settings(max_examples=30, deadline=None)
    @given(blobs=st.lists(st.binary(max_size=2_000), max_size=8))
    def test_any_bytes_come_back_equal(self, tmp_path_factory: pytest.TempPathFactory,
                                        blobs: list[bytes]) -> None:
        root = tmp_path_factory.mktemp("blobs")
        store = ArtifactStore(self.backend(root))
        digests = [store.put_bytes(blob) for blob in blobs]
        assert [store.get_bytes(d) for d in digests] == blobs


class TestLocalBlobBackend(ArtifactStoreContract):
    def backend(self, tmp_path: Path) -> BlobBackend:
        return LocalBlobBackend(str(tmp_path / "artifacts"))

    def corrupt(self, backend: BlobBackend, key: str) -> None:
        assert isinstance(backend, LocalBlobBackend)
        (backend.root / key).write_bytes(b"tampered")


def test_project_artifacts_live_in_the_configured_folder(project_dir: Path) -> None:
    from flywheel.project import Project

    with Project.open(project_dir) as project:
        digest = project.artifacts.put_bytes(b"hello")
    assert (project_dir / "artifacts" / "sha256" / digest[:2] / digest[2:]).is_file()
