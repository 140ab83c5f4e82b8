"""Gymnasium: neural observations for RL (wrapper.py) and an example environment (street_drive.py).

Importing this package registers "neurender/StreetDrive-v0" and "neurender/StreetDriveGBuffer-v0".
"""

from neurender.engine_plugin.gym.street_drive import register_envs

register_envs()
