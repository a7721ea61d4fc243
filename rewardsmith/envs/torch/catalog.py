"""Self-descriptions of the built-in torch envs (data only; the dynamics live in their modules)."""

from __future__ import annotations

import math

from ..description import ActionSpec, EnvDescription, StateVar

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


PENDULUM = EnvDescription(
    id="torch:Pendulum",
    summary="an inverted pendulum on a motorised pivot (gymnasium Pendulum-v1 dynamics); it starts at a "
            "random angle and the agent applies a torque to swing it up and keep it upright",
    variables=(
        StateVar(name="cos_theta", low=-1.0, high=1.0, description="cosine of the angle from upright (1 is upright)"),
        StateVar(name="sin_theta", low=-1.0, high=1.0, description="sine of the angle from upright"),
        StateVar(name="theta_dot", unit="rad/s", low=-8.0, high=8.0, description="angular velocity"),
        StateVar(name="theta", unit="rad", low=-math.pi, high=math.pi,
                 description="angle from upright, wrapped to [-pi, pi]; 0 is upright"),
    ),
    action=ActionSpec(kind="continuous", shape=(1,), low=(-2.0,), high=(2.0,), description="torque at the pivot (N m)"),
    max_episode_steps=200,
    observation="[cos_theta, sin_theta, theta_dot]",
    dt=0.05,
)

MOUNTAIN_CAR_GOAL = 0.45

MOUNTAIN_CAR_CONTINUOUS = EnvDescription(
    id="torch:MountainCarContinuous",
    summary="an underpowered car in a valley between two hills (gymnasium MountainCarContinuous-v0 "
            "dynamics); it must rock back and forth to build momentum and reach the flag on the right hill",
    variables=(
        StateVar(name="position", unit="m", low=-1.2, high=0.6,
                 description=f"horizontal position; the valley floor is near -0.52, the flag at {MOUNTAIN_CAR_GOAL}"),
        StateVar(name="velocity", unit="m/step", low=-0.07, high=0.07, description="horizontal velocity"),
        StateVar(name="height", unit="m", low=0.1, high=1.0,
                 description="height of the car on the track, sin(3 position) * 0.45 + 0.55"),
    ),
    action=ActionSpec(kind="continuous", shape=(1,), low=(-1.0,), high=(1.0,),
                      description="push force, positive to the right"),
    terminations={"reached_flag": f"position >= {MOUNTAIN_CAR_GOAL} and velocity >= 0"},
    max_episode_steps=999,
    observation="[position, velocity]",
)

ACROBOT = EnvDescription(
    id="torch:Acrobot",
    summary="two links hanging from a fixed pivot, with a motor only at the joint between them "
            "(gymnasium Acrobot-v1 dynamics); the goal is to swing the free end above a line one link "
            "length over the pivot",
    variables=(
        StateVar(name="theta1", unit="rad", low=-math.pi, high=math.pi,
                 description="angle of the first link from hanging straight down"),
        StateVar(name="theta2", unit="rad", low=-math.pi, high=math.pi,
                 description="angle of the second link relative to the first"),
        StateVar(name="theta1_dot", unit="rad/s", low=-4 * math.pi, high=4 * math.pi,
                 description="angular velocity of the first link"),
        StateVar(name="theta2_dot", unit="rad/s", low=-9 * math.pi, high=9 * math.pi,
                 description="angular velocity of the second link"),
        StateVar(name="tip_height", unit="m", low=-2.0, high=2.0,
                 description="height of the free end above the pivot, -cos(theta1) - cos(theta1 + theta2)"),
    ),
    action=ActionSpec(kind="discrete", n=3, description="torque at the middle joint: 0 is -1, 1 is 0, 2 is +1 (N m)"),
    terminations={"reached_height": "tip_height > 1.0"},
    max_episode_steps=500,
    observation="[cos theta1, sin theta1, cos theta2, sin theta2, theta1_dot, theta2_dot]",
    dt=0.2,
)

REACHER = EnvDescription(
    id="torch:Reacher",
    summary="a two-link arm in a horizontal plane, motors at both joints; a goal point is placed at random "
            "within reach at the start of each episode (rewardsmith's own dynamics, no gymnasium counterpart)",
    variables=(
        StateVar(name="joint_angles", unit="rad", shape=(2,), low=-math.pi, high=math.pi,
                 description="shoulder angle from the x axis, elbow angle relative to the first link"),
        StateVar(name="joint_vel", unit="rad/s", shape=(2,), low=-10.0, high=10.0,
                 description="joint angular velocities"),
        StateVar(name="fingertip", unit="m", shape=(2,), low=-2.0, high=2.0, description="x, y of the arm's end"),
        StateVar(name="goal", unit="m", shape=(2,), low=-2.0, high=2.0, description="x, y of the goal point"),
        StateVar(name="distance", unit="m", low=0.0, high=4.0, description="distance from the fingertip to the goal"),
    ),
    action=ActionSpec(kind="continuous", shape=(2,), low=(-1.0, -1.0), high=(1.0, 1.0),
                      description="torques at the shoulder and the elbow (N m)"),
    max_episode_steps=100,
    observation="[cos/sin of both joint angles, joint_vel, goal, fingertip - goal]",
    dt=0.05,
)
