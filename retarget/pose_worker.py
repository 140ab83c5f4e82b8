"""MediaPipe Pose worker: runs in its own environment (mediapipe==0.10.14 needs numpy<2 and protobuf<5).

Never imported by neurender: `pose_extract.py` runs it as a script with the pose environment's Python.
    python pose_worker.py VIDEO OUT.json [--max-frames N]
Reads the video with OpenCV, runs MediaPipe Pose (model_complexity=1, the model bundled in the wheel) in
video mode, and writes the JSON that `keypoints_io.load_mediapipe` reads. Prints "progress DONE TOTAL" lines
on stdout for the caller's progress bar.
"""

import argparse
import json
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("video")
    parser.add_argument("out")
    parser.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: all)")
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
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1) as pose:
        while not args.max_frames or len(frames) < args.max_frames:
            ok, bgr = capture.read()
            if not ok:
                break
            result = pose.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            frame = {"image": None, "world": None}
            if result.pose_landmarks is not None:
                frame["image"] = [[p.x * width, p.y * height, p.z * width, p.visibility]
                                  for p in result.pose_landmarks.landmark]
            if result.pose_world_landmarks is not None:
                frame["world"] = [[p.x, p.y, p.z, p.visibility] for p in result.pose_world_landmarks.landmark]
            frames.append(frame)
            print(f"progress {len(frames)} {total}", flush=True)
    capture.release()
    with open(args.out, "w") as f:
        json.dump({"format": "mediapipe_pose_33", "width": width, "height": height, "fps": fps, "frames": frames}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
