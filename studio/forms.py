"""Forms of the account pages."""

from __future__ import annotations

from django import forms

from studio.models import ApiToken


class ApiTokenForm(forms.ModelForm):
    """Naming a new API token (the model sets the length limit)."""

    class Meta:
        model = ApiToken
        fields = ["name"]
