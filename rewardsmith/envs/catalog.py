"""Self-descriptions of the built-in torch envs (data only; the dynamics live in their modules)."""

from __future__ import annotations

import math

from .description import ActionSpec, EnvDescription, StateVar

THETA_LIMIT = 12 * 2 * math.pi / 360  # 0.2095 rad, as in gymnasium's CartPole
X_LIMIT = 2.4

CARTPOLE = EnvDescription(
    id="torch:CartPole",
    summary="a pole hinged on a cart that moves along a frictionless track "
            "(gymnasium CartPole-v1 dynamics); the agent pushes the cart left or right",
    variables=(
        StateVar(name="cart_pos", unit="m", low=-X_LIMIT, high=X_LIMIT,
                 description="cart position on the track, 0 is the centre"),
        StateVar(name="cart_vel", unit="m/s", low=-3.0, high=3.0,
                 description="cart velocity, positive to the right"),
        StateVar(name="pole_angle", unit="rad", low=-THETA_LIMIT, high=THETA_LIMIT,
                 description="pole angle from upright, positive when leaning right"),
        StateVar(name="pole_vel", unit="rad/s", low=-3.5, high=3.5,
                 description="pole angular velocity"),
    ),
    action=ActionSpec(kind="discrete", n=2, description="0 pushes the cart left, 1 pushes it right "
                      "(10 N)"),
    terminations={"pole_fell": f"abs(pole_angle) > {THETA_LIMIT:.6f}",
                  "cart_left_track": f"abs(cart_pos) > {X_LIMIT}"},
    max_episode_steps=500,
    observation="[cart_pos, cart_vel, pole_angle, pole_vel]",
    dt=0.02,
)
