"""Site-wide pages: logging in (django.contrib.auth's, with the demo's login
in demo mode), signing up and the person's API tokens."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from studio.demo import demo_login
from studio.forms import ApiTokenForm
from studio.models import ApiToken
from studio.services import api_token_create, api_token_revoke


class StudioLoginView(LoginView):
    """django.contrib.auth's login; in demo mode the page also says the demo's login."""

    def get_context_data(self, **kwargs):
        return super().get_context_data(**kwargs) | {"demo_login": demo_login()}


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        next_url = ""
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(next_url or "catalog:home")
    return render(request, "registration/signup.html", {"form": form, "next": next_url})


@require_http_methods(["GET", "POST"])
@login_required
@never_cache
def api_tokens(request: HttpRequest) -> HttpResponse:
    """The person's tokens. Creating one shows it on this response only: it is not
    stored, so there is no redirect to a page that could show it again."""
    form = ApiTokenForm(request.POST or None)
    created, secret = None, None
    if request.method == "POST" and form.is_valid():
        created, secret = api_token_create(user=request.user, name=form.cleaned_data["name"])
        form = ApiTokenForm()
    context = {
        "form": form,
        "tokens": request.user.api_tokens.all(),
        "created": created,
        "secret": secret,
    }
    return render(request, "account/api_tokens.html", context)


@require_POST
@login_required
def api_token_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    api_token_revoke(token=token)
    messages.success(
        request, _("The token “%(name)s” is revoked: it no longer works.") % {"name": token.name}
    )
    return redirect("api_tokens")
