from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from generation.models import Generation
from templates_catalog.models import Category, Template, TemplateField


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"person{n}")
    password = factory.django.Password("a-long-test-password")


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"category-{n}")
    name_ja = factory.Sequence(lambda n: f"カテゴリ{n}")
    name_en = factory.Sequence(lambda n: f"Category {n}")


class TemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Template

    slug = factory.Sequence(lambda n: f"template-{n}")
    category = factory.SubFactory(CategoryFactory)
    status = Template.Status.PUBLISHED
    title_ja = "お礼メール"
    title_en = "Thank-you email"
    description_ja = "お礼のメールを書きます。"
    description_en = "Writes a thank-you email."
    tags_ja = "お礼, メール"
    tags_en = "thank you, email"
    system_prompt_ja = "あなたは丁寧な秘書です。"
    system_prompt_en = "You are a courteous assistant."
    prompt_body_ja = "{{ recipient }}様へのお礼メールを書いてください。"
    prompt_body_en = "Write a thank-you email to {{ recipient }}."


class TemplateFieldFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TemplateField

    template = factory.SubFactory(TemplateFactory)
    name = factory.Sequence(lambda n: f"field_{n}")
    label_ja = "項目"
    label_en = "Field"
    type = TemplateField.Type.SHORT_TEXT
    required = True


def template_with_fields(**kwargs) -> Template:
    """A published template with a required `recipient` and an optional `note`."""
    template = TemplateFactory(
        prompt_body_en=(
            "Write a thank-you email to {{ recipient }}.{% if note %} Mention: {{ note }}{% endif %}"
        ),
        **kwargs,
    )
    TemplateFieldFactory(
        template=template, name="recipient", label_en="Recipient", label_ja="宛先", order=1
    )
    TemplateFieldFactory(
        template=template,
        name="note",
        label_en="Note",
        label_ja="メモ",
        required=False,
        type=TemplateField.Type.LONG_TEXT,
        order=2,
    )
    return template


class GenerationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Generation

    user = factory.SubFactory(UserFactory)
    template = factory.SubFactory(TemplateFactory)
    template_title = "Thank-you email"
    language = "en"
    inputs = factory.LazyFunction(lambda: {"recipient": "Ms Sato"})
    prompt = "Write a thank-you email to Ms Sato."


def image_template(**kwargs) -> Template:
    """A published image template: a subject, and the parameters image templates
    take by name (aspect ratio, count, negative prompt)."""
    template = TemplateFactory(
        kind=Template.Kind.IMAGE,
        title_en="Product photo",
        title_ja="商品写真",
        system_prompt_en="",
        system_prompt_ja="",
        prompt_body_en="A studio photo of {{ subject }} on a white background.",
        prompt_body_ja="白背景で撮影した{{ subject }}の商品写真。",
        **kwargs,
    )
    TemplateFieldFactory(template=template, name="subject", label_en="Subject", order=1)
    TemplateFieldFactory(
        template=template,
        name="aspect_ratio",
        label_en="Aspect ratio",
        type=TemplateField.Type.SELECT,
        choices_en="1:1|Square\n16:9|Landscape",
        choices_ja="1:1|正方形\n16:9|横長",
        default="1:1",
        order=2,
    )
    TemplateFieldFactory(
        template=template,
        name="count",
        label_en="Number of images",
        type=TemplateField.Type.INTEGER,
        min_value=1,
        max_value=4,
        default="1",
        order=3,
    )
    TemplateFieldFactory(
        template=template,
        name="negative_prompt",
        label_en="Leave out",
        required=False,
        order=4,
    )
    return template


class FavouriteTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "templates_catalog.FavouriteTemplate"

    user = factory.SubFactory(UserFactory)
    template = factory.SubFactory(TemplateFactory)


class UsageRecordFactory(factory.django.DjangoModelFactory):
    """A finished generation's usage; `created_at` can be set (aware)."""

    class Meta:
        model = "generation.UsageRecord"

    user = factory.SubFactory(UserFactory)
    template = factory.SubFactory(TemplateFactory)
    template_title = factory.LazyAttribute(
        lambda record: record.template.title_en if record.template else "A deleted template"
    )
    status = "completed"
    provider = "demo"
    model = "demo-model"
    input_tokens = 50
    output_tokens = 100
    images = 0
    # About two Japanese characters a token, unless a test says otherwise.
    output_characters = factory.LazyAttribute(lambda record: record.output_tokens * 2)
    charged_output_tokens = factory.LazyAttribute(lambda record: record.output_tokens)
    charged_images = factory.LazyAttribute(lambda record: record.images)


def staff_with_permissions(*codenames: str, **kwargs):
    """A staff member who is not a superuser, with these templates_catalog
    permissions (e.g. "view_template", "add_template")."""
    from django.contrib.auth.models import Permission

    user = UserFactory(is_staff=True, **kwargs)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="templates_catalog", codename__in=codenames
        )
    )
    return user


def template_admin_data(template: Template, **changes) -> dict[str, str]:
    """The admin change form of `template` as the browser posts it, with its
    fields and related templates inline and `changes` (form keys, e.g.
    "prompt_body_en") applied."""
    import json

    data = {
        "slug": template.slug,
        "category": str(template.category_id),
        "kind": template.kind,
        "status": template.status,
        "tier": template.tier,
        "answer_format": template.answer_format,
        "order": str(template.order),
        "tags_ja": template.tags_ja or "",
        "tags_en": template.tags_en or "",
    }
    for lang in ("ja", "en"):
        for name in ("title", "description", "system_prompt", "prompt_body"):
            data[f"{name}_{lang}"] = getattr(template, f"{name}_{lang}") or ""
        data[f"sample_inputs_{lang}"] = json.dumps(getattr(template, f"sample_inputs_{lang}"))
    fields = list(template.fields.all())
    data.update(
        {
            "fields-TOTAL_FORMS": str(len(fields)),
            "fields-INITIAL_FORMS": str(len(fields)),
            "fields-MIN_NUM_FORMS": "0",
            "fields-MAX_NUM_FORMS": "1000",
        }
    )
    for i, field in enumerate(fields):
        row = {
            "id": field.pk,
            "template": template.pk,
            "name": field.name,
            "type": field.type,
            "order": field.order,
            "default": field.default,
            "min_length": field.min_length,
            "max_length": field.max_length,
            "min_value": field.min_value,
            "max_value": field.max_value,
        }
        for lang in ("ja", "en"):
            for name in ("label", "help_text", "placeholder", "choices"):
                row[f"{name}_{lang}"] = getattr(field, f"{name}_{lang}") or ""
        if field.required:
            row["required"] = "on"
        data.update(
            {f"fields-{i}-{key}": "" if value is None else str(value) for key, value in row.items()}
        )
    links = list(template.related_links.all())
    data.update(
        {
            "related_links-TOTAL_FORMS": str(len(links)),
            "related_links-INITIAL_FORMS": str(len(links)),
            "related_links-MIN_NUM_FORMS": "0",
            "related_links-MAX_NUM_FORMS": "1000",
        }
    )
    for i, link in enumerate(links):
        row = {
            "id": link.pk,
            "from_template": template.pk,
            "to_template": link.to_template_id,
            "order": link.order,
        }
        data.update({f"related_links-{i}-{key}": str(value) for key, value in row.items()})
    data.update(changes)
    return data
