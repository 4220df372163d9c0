"""Video: real-time factor and recall, side by side with the peer's way, in one run.

    python benchmarks/video.py [--clips a.mp4,b.mp4] [--seconds 30] [--no-reference]

For each clip in ../shared/data/videos (or --clips), over its first --seconds:
- faceledger's job pipeline (sampled frames -> detect and embed -> track), at 5 frames a second
  and at every frame (YuNet looking at whole frames FACELEDGER_VIDEO_SCAN_FPS times a second,
  and again with every frame looked at whole): seconds of processing per second of video (the
  real-time factor; below 1.0 is faster than the footage plays), on this machine's cores;
- the peer's way (face_recognition on each sampled frame: HOG at upsample 1, every face
  embedded and compared with a gallery), at 5 frames a second, as a ratio;
- recall against an exhaustive reference: every frame through the MMOD CNN at upsample 1 (no
  pixel budget), its faces tracked; the share of those people (tracks) the default job also
  finds (at 5 frames a second, and at every frame both ways), and how many per-frame reference
  detections the sampling skipped, and how many on sampled frames no face of the job overlaps;
  faces under 40 px reported apart.
Results also go to out/video.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from faceledger.config import Settings, get_settings
from faceledger.imaging.video import frames, probe
from faceledger.service.video_analysis import FramePlan, follow_faces
from faceledger.vision import FaceEngine
from faceledger.vision.tracking import Tracker


def _frames_until(path: Path, fps: float | None, seconds: float, shrink=None):
    try:
        for frame in frames(path, fps, shrink=shrink):
            if frame.timestamp_ms > seconds * 1000:
                return
            yield frame
    except Exception as error:  # a clip that ends early still has its frames measured
        print(f"  ({path.name}: {error})", file=sys.stderr)


def faceledger_run(
    engine: FaceEngine, path: Path, fps: float | None, seconds: float, scan_fps: float
):
    """Decoding included: a job's whole cost."""
    started = time.perf_counter()
    decoded = _frames_until(path, fps, seconds, engine.yunet_scale)  # as jobs decode
    tracker = Tracker.on_scale_of(engine)  # as jobs track
    sightings = []
    # the CNN fallback about once a second of video and segments as a job's defaults
    plan = FramePlan.of(probe(path), fps, Settings().video_segment_seconds, scan_fps)
    for frame, faces, people in follow_faces(engine, decoded, tracker, plan):
        sightings += [(frame.timestamp_ms, p, f.box) for p, f in zip(people, faces, strict=True)]
        if not faces:
            sightings.append((frame.timestamp_ms, None, None))  # sampled, no face
    return time.perf_counter() - started, tracker, sightings


def peer_run(path: Path, seconds: float, gallery: list[np.ndarray]) -> float | None:
    try:
        import face_recognition
    except ImportError:
        return None
    started = time.perf_counter()
    for frame in _frames_until(path, 5.0, seconds):  # decoding included, as for faceledger
        boxes = face_recognition.face_locations(frame.rgb, number_of_times_to_upsample=1)
        for encoding in face_recognition.face_encodings(frame.rgb, boxes):
            face_recognition.compare_faces(gallery, encoding)
    return time.perf_counter() - started


def reference(engine: FaceEngine, path: Path, seconds: float):
    """Every frame, the CNN at upsample 1 without a budget, tracked."""
    tracker = Tracker()
    detections = []
    for frame in _frames_until(path, None, seconds):
        found = engine._run_cnn(frame.rgb, 1)
        faces = [engine._locate(frame.rgb, box, score, name)[0] for box, score, name in found]
        faces = engine.embed_many([(frame.rgb, faces)])[0] if faces else []
        people = tracker.update(frame.timestamp_ms, faces)
        detections += [(frame.timestamp_ms, p, f.box) for p, f in zip(people, faces, strict=True)]
    return tracker, detections


def recall(ref_tracker, ref_detections, job_sightings) -> dict:
    by_time: dict[int, list] = {}
    for t, _, box in job_sightings:
        by_time.setdefault(t, [])
        if box is not None:
            by_time[t].append(box)
    found_tracks, small_missed, big_missed = set(), 0, 0
    skipped = unmatched = 0
    for t, person, box in ref_detections:
        boxes = by_time.get(t)
        if boxes is None:
            skipped += 1
            continue
        if any(box.iou(b) >= 0.3 for b in boxes):
            found_tracks.add(person)
        else:
            unmatched += 1
    tracks = ref_tracker.tracks
    missed = []
    for track in tracks:
        if track.index not in found_tracks:
            size = max(s.face.box.width for s in track.sightings)
            small_missed += size < 40
            big_missed += size >= 40
            missed.append(
                {
                    "frames": len(track.sightings),
                    "from_ms": track.first_ms,
                    "to_ms": track.last_ms,
                    "largest_px": round(size),
                }
            )
    return {
        "reference_people": len(tracks),
        "found": len(found_tracks),
        "recall": round(len(found_tracks) / len(tracks), 3) if tracks else None,
        "missed_under_40px": small_missed,
        "missed_40px_or_more": big_missed,
        "reference_detections": len(ref_detections),
        "detections_on_frames_not_sampled": skipped,
        "detections_unmatched_on_sampled_frames": unmatched,
        "missed_people": missed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    folder = get_settings().eval_data / "videos"
    parser.add_argument(
        "--clips",
        default="facenet-pytorch-video.mp4,short_hamilton_clip.mp4,one-by-one-person-detection.mp4",
    )
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument(
        "--model",
        default=get_settings().face_model,
        help="Face model: sface-int8 (the default), sface or dlib.",
    )
    parser.add_argument("--out", type=Path, default=Path("out/video.json"))
    args = parser.parse_args()
    engine = FaceEngine.for_model(args.model, cnn_fallback=True)
    cnn = FaceEngine(detector="cnn", upsample=1)
    rows = []
    for name in args.clips.split(","):
        path = folder / name
        meta = probe(path)
        seconds = min(args.seconds, meta.duration_ms / 1000)
        row: dict = {
            "clip": name,
            "size": f"{meta.width}x{meta.height}",
            "seconds": seconds,
            "face_model": engine.model_version,
        }
        scan = Settings().video_scan_fps
        took, tracker, sightings = faceledger_run(engine, path, 5.0, seconds, scan)
        row["faceledger_5fps_rtf"] = round(took / seconds, 3)
        row["people_5fps"] = len(tracker.tracks)
        took_all, every_tracker, every = faceledger_run(engine, path, None, seconds, scan)
        row["faceledger_every_frame_rtf"] = round(took_all / seconds, 3)
        row["people_every_frame"] = len(every_tracker.tracks)
        # Every frame with YuNet looking at each one whole: what the scan rate saves.
        took_whole, whole_tracker, whole = faceledger_run(engine, path, None, seconds, 0.0)
        row["faceledger_every_frame_whole_rtf"] = round(took_whole / seconds, 3)
        row["people_every_frame_whole"] = len(whole_tracker.tracks)
        row["faces_every_frame"] = sum(box is not None for _, _, box in every)
        row["faces_every_frame_whole"] = sum(box is not None for _, _, box in whole)
        gallery = [t.descriptor for t in tracker.tracks if t.descriptor is not None][:20]
        peer = peer_run(path, seconds, gallery or [np.zeros(128)])
        if peer is not None:
            row["face_recognition_5fps_rtf"] = round(peer / seconds, 3)
            row["ratio_5fps"] = round(peer / took, 2)
        if not args.no_reference:
            ref_tracker, ref_detections = reference(cnn, path, seconds)
            row["recall_vs_cnn_every_frame"] = recall(ref_tracker, ref_detections, sightings)
            row["recall_every_frame"] = recall(ref_tracker, ref_detections, every)
            row["recall_every_frame_whole"] = recall(ref_tracker, ref_detections, whole)
        rows.append(row)
        print(json.dumps(row), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
