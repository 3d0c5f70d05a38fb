"""Case classification in Chinese and English, and priority rules."""

from __future__ import annotations

import pytest

from services.crm.domain.classification import Classifier

CLASSIFIER = Classifier.from_file()


@pytest.mark.parametrize(
    ("subject", "description", "category"),
    [
        ("Where is my order?", "I placed it last week", "order_inquiry"),
        ("订单状态查询", "我想知道订单号 123 的状态", "order_inquiry"),
        ("Package never arrived", "courier says delivered, no parcel", "logistics_complaint"),
        ("我的快递还没到", "物流一周没有更新", "logistics_complaint"),
        ("Blender stopped working", "the motor is defective after two days", "product_quality"),
        ("收到的杯子破损", "质量太差了", "product_quality"),
        ("I want a refund", "please tell me how to return the shoes", "refund_return"),
        ("申请退款", "衣服不合适，想退货", "refund_return"),
        ("Refund for broken mug", "", "refund_return"),
        ("My account was hacked", "someone changed my password", "account_security"),
        ("账号被盗", "有异常登录，验证码不是我申请的", "account_security"),
        ("Double charged on my invoice", "the payment went through twice", "billing"),
        ("发票开错了", "账单金额不对", "billing"),
        # Traditional Chinese and full-width text fold onto the same keywords.
        ("訂單狀態查詢", "", "order_inquiry"),
        ("我的快遞還沒到", "", "logistics_complaint"),
        ("帳號被盜", "密碼被改了", "account_security"),
        ("產品質量有問題", "", "product_quality"),
        ("ｒｅｆｕｎｄ ｐｌｅａｓｅ", "", "refund_return"),
        # Negations the rules file ignores, and a short word that takes no -d.
        ("没有问题，谢谢", "", "other"),
        ("my news feed is empty", "", "other"),
        ("Hello there", "just saying hi", "other"),
        ("你好", "", "other"),
    ],
)
def test_cases_are_classified_in_both_languages(
    subject: str, description: str, category: str
) -> None:
    assert CLASSIFIER.classify(subject, description).category == category


def test_nothing_matched_is_other_with_zero_confidence() -> None:
    result = CLASSIFIER.classify("hello", "")
    assert result.category == "other" and result.confidence == 0.0


def test_a_clear_case_is_more_confident_than_a_mixed_one() -> None:
    clear = CLASSIFIER.classify("Refund please", "I want my money back, refund the order")
    mixed = CLASSIFIER.classify("order", "broken item, refund?")
    assert 0 < mixed.confidence < clear.confidence <= 1


def test_english_keywords_match_whole_words_only() -> None:
    assert CLASSIFIER.classify("reorder the bordering shelves", "").category == "other"


def test_a_keyword_inside_a_longer_one_found_counts_once() -> None:
    # "订单" is part of "订单号": one order keyword, so the parcel wins.
    result = CLASSIFIER.classify("订单号123快递没收到", "")
    assert result.category == "logistics_complaint"
    assert result.scores["order_inquiry"] == 4.0  # 订单号 alone, in the subject (x2)
    # "charge" is part of "charged": billing no longer outweighs the refund.
    assert CLASSIFIER.classify("I was charged and want a refund", "").category == "refund_return"


def test_negated_urgency_does_not_raise_the_priority() -> None:
    for calm in ("this is not urgent", "不紧急，有空再看", "不急"):
        assert CLASSIFIER.priority("other", None, calm) == "low", calm
    assert CLASSIFIER.priority("other", None, "urgent!") == "high"


def test_rules_come_from_the_data_file() -> None:
    custom = Classifier(
        {
            "default_category": "misc",
            "categories": {
                "misc": {"rules": []},
                "warranty": {"priority": 2, "rules": [{"patterns": [r"warrant(y|ies)"]}]},
            },
        }
    )
    assert custom.classify("Is this under warranty?").category == "warranty"


def test_priority_rises_with_category_tier_and_negative_wording() -> None:
    assert CLASSIFIER.priority("other", "default", "hi") == "low"
    assert CLASSIFIER.priority("billing", "default", "invoice") == "normal"
    assert CLASSIFIER.priority("billing", "gold", "invoice") == "high"
    assert CLASSIFIER.priority("billing", "default", "invoice, this is unacceptable") == "high"
    assert CLASSIFIER.priority("account_security", "default", "hacked") == "high"
    assert CLASSIFIER.priority("account_security", "vip", "账号被盗，太差了") == "urgent"
    assert CLASSIFIER.priority("order_inquiry", "default", "紧急 订单") == "urgent"
