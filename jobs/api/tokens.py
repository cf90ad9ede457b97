"""Logging in and out: CRM.COM's token methods."""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import SlidingToken

from jobs.api.authentication import LoginThrottle
from jobs.api.envelope import envelope
from jobs.api.inputs import Body
from jobs.api.schema import OptionalText, TextField, enveloped, errors


class LoginInput(Body):
    # Credentials are taken as typed (TextField): a password may begin or end with a space.
    username = TextField()
    password = TextField(style={"input_type": "password"})
    organisation = OptionalText(required=False, allow_blank=True, help_text="accepted and ignored")


class TokenView(APIView):
    """Log in: a token valid for 2 hours (CRM.COM's lifetime)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]

    @extend_schema(
        summary="Log in",
        request=LoginInput,
        responses={
            200: enveloped(
                inline_serializer("Token", {"token": serializers.CharField()}), "TokenEnvelope"
            ),
            **errors(
                "MANDATORY_PARAMETER_MISSING",
                "INVALID_PARAMETER",
                "AUTHENTICATION_FAILED",
                "THROTTLED",
            ),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        body = LoginInput(data=request.data)
        body.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=body.validated_data["username"],
            password=body.validated_data["password"],
        )
        if user is None:
            raise AuthenticationFailed("Wrong username or password, or the user is inactive.")
        return Response(envelope({"token": str(SlidingToken.for_user(user))}))


class TokenReleaseInput(Body):
    token = TextField()


class TokenReleaseView(APIView):
    """Log out: the token stops working at once."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Release a token",
        request=TokenReleaseInput,
        responses={
            200: enveloped(serializers.JSONField(allow_null=True), "ReleaseEnvelope"),
            **errors("MANDATORY_PARAMETER_MISSING", "INVALID_PARAMETER", "AUTHENTICATION_FAILED"),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        body = TokenReleaseInput(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            SlidingToken(body.validated_data["token"]).blacklist()
        except TokenError:
            raise AuthenticationFailed("The token is invalid, expired or released.") from None
        return Response(envelope(None))
