"""MediaPipe Pose worker: runs in its own environment (mediapipe==0.10.14 needs numpy<2 and protobuf<5).

Never imported by neurender: `pose_extract.py` runs it as a script with the pose environment's Python.
    python pose_worker.py VIDEO OUT.json [--max-frames N] [--person K]
Reads the video with OpenCV, runs MediaPipe Pose (model_complexity=1, the model bundled in the wheel) and
writes the JSON that `keypoints_io.load_mediapipe` reads. Prints "progress DONE TOTAL" lines on stdout for
the caller's progress bar.

One person per output. MediaPipe's Pose finds one person per image, so footage with several people is
tracked here: until a person is found, each frame is searched whole, finding up to MAX_PEOPLE people by
running the model again with every person found so far greyed out; they are ranked by box area and the
K-th largest (`--person`, default 0: the largest) becomes the track. From then on, each frame is searched
in a window around the track's last box (twice its size, growing while the person is not found), and the
person whose box centre is nearest the last one is taken if it lies within the gate (half the box's longer
side, growing while lost up to three quarters of it); otherwise the frame has nobody ("image": null). So the output
never jumps to another person who is not where the tracked one was.
"""

import argparse
import json
import sys

MAX_PEOPLE = 4
MIN_VISIBILITY = 0.5
WINDOW = 2.0  # search window side, in track-box sides
GROWTH = 0.25  # window and gate growth per frame the person is not found
GATE, MAX_GATE = 0.5, 0.75  # how far (in track-box sides) a box centre may move between found frames


def _box(points, visible):
    """(x0, y0, x1, y1) around the visible landmarks, padded by 10% of their extent; None if too few."""
    seen = [(x, y) for (x, y, _, v) in points if v >= visible]
    if len(seen) < 4:
        return None
    xs, ys = [p[0] for p in seen], [p[1] for p in seen]
    pad_x, pad_y = 0.1 * (max(xs) - min(xs)) + 2, 0.1 * (max(ys) - min(ys)) + 2
    return (min(xs) - pad_x, min(ys) - pad_y, max(xs) + pad_x, max(ys) + pad_y)


def _people(pose, rgb, window, limit):
    """Up to `limit` people in the window (x0, y0, x1, y1) of the frame: [(image points, world points, box)]."""
    import numpy as np

    h, w = rgb.shape[:2]
    x0, y0 = max(0, int(window[0])), max(0, int(window[1]))
    x1, y1 = min(w, int(np.ceil(window[2]))), min(h, int(np.ceil(window[3])))
    if x1 - x0 < 16 or y1 - y0 < 16:
        return []
    crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    found = []
    for _ in range(limit):
        result = pose.process(crop)
        if result.pose_landmarks is None:
            break
        cw, ch = x1 - x0, y1 - y0
        image = [[p.x * cw + x0, p.y * ch + y0, p.z * cw, p.visibility] for p in result.pose_landmarks.landmark]
        world = (
            None
            if result.pose_world_landmarks is None
            else [[p.x, p.y, p.z, p.visibility] for p in result.pose_world_landmarks.landmark]
        )
        box = _box(image, MIN_VISIBILITY)
        if box is None:
            break
        found.append((image, world, box))
        bx0, by0 = max(0, int(box[0]) - x0), max(0, int(box[1]) - y0)
        bx1, by1 = max(0, int(box[2]) - x0), max(0, int(box[3]) - y0)
        crop[by0:by1, bx0:bx1] = 128  # grey the person out to find the next one
    return found


def _centre(box):
    return 0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("video")
    parser.add_argument("out")
    parser.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: all)")
    parser.add_argument("--person", type=int, default=0, help="track the K-th largest person first found (0: largest)")
    args = parser.parse_args()

    import cv2
    import mediapipe as mp

    capture = cv2.VideoCapture(args.video)
    if not capture.isOpened():
        print(f"cannot open video {args.video}", file=sys.stderr)
        return 2
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    if args.max_frames:
        total = min(total, args.max_frames) if total else args.max_frames
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    frames = []
    track, lost = None, 0
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
        while not args.max_frames or len(frames) < args.max_frames:
            ok, bgr = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            frame = {"image": None, "world": None}
            if track is None:
                people = sorted(
                    _people(pose, rgb, (0, 0, width, height), max(MAX_PEOPLE, args.person + 1)),
                    key=lambda p: -(p[2][2] - p[2][0]) * (p[2][3] - p[2][1]),
                )
                chosen = people[args.person] if len(people) > args.person else None
            else:
                side = max(track[2] - track[0], track[3] - track[1])
                cx, cy = _centre(track)
                half = 0.5 * side * WINDOW * (1 + GROWTH * lost)
                people = _people(pose, rgb, (cx - half, cy - half, cx + half, cy + half), 2)
                gate = side * min(GATE * (1 + GROWTH * lost), MAX_GATE)

                def distance(p):
                    px, py = _centre(p[2])
                    return ((px - cx) ** 2 + (py - cy) ** 2) ** 0.5

                near = [p for p in people if distance(p) <= gate]
                chosen = min(near, key=distance) if near else None
            if chosen is not None:
                frame["image"], frame["world"], frame["box"] = chosen[0], chosen[1], [round(v, 1) for v in chosen[2]]
                track, lost = chosen[2], 0
            elif track is not None:
                lost += 1
            frames.append(frame)
            print(f"progress {len(frames)} {total}", flush=True)
    capture.release()
    with open(args.out, "w") as f:
        json.dump(
            {
                "format": "mediapipe_pose_33",
                "width": width,
                "height": height,
                "fps": fps,
                "person": args.person,
                "frames": frames,
            },
            f,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
