"""A call centre's memory for the tests: realistic knowledge-base answers and one past ticket, in Japanese.

Written as the national centre's call centre would answer municipalities (seed
002 §4: questions and answers kept in a database, answered from past answers).
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboards.tickets import Category, KbEntry, Ticket, TicketDraft, TicketStatus, TicketWorkflow


@dataclass(frozen=True)
class Answer:
    title: str
    question: str
    answer: str
    category: Category


LINE_DOWN = Answer(
    "専用回線の回線断（二重化の片系断・両系断）",
    "市区町村と都道府県ネットワークを結ぶ専用回線が回線断になったと監視から連絡があった。業務への影響は？",
    "二重化された片系の回線断では、もう一方の回線で通信は継続します。全国センターから通信事業者へ故障を申告済みです。"
    "回線ルータの電源は切らずに復旧連絡をお待ちください。両系とも回線断の場合はCSから都道府県サーバへの通知が"
    "送信待ちになります。復旧後に自動で再送されます。",
    Category.NETWORK)
CS_UNREACHABLE = Answer(
    "業務端末からCSに接続できない",
    "既存住基システムの業務端末からコミュニケーションサーバ（CS）に接続できない。",
    "コールセンターでFWとCSの監視状態を確認します。CSが稼働中であれば、業務端末のLANケーブルとIPアドレス設定を"
    "確認してください。CSクラスタの両ノードが停止している場合は、復旧用サーバへの切替手順書（第3章）に従ってください。",
    Category.CS)
VEIN = Answer(
    "静脈認証で操作者認証ができない",
    "業務端末の静脈認証装置に手をかざしてもログインできない。",
    "静脈認証装置のUSBケーブルの接続と、装置のランプが緑に点灯していることを確認してください。3回続けて失敗する"
    "場合は、セキュリティ責任者による生体情報の再登録が必要です。",
    Category.AUTHENTICATION)
OFF_HOURS = Answer(
    "共通運用時間帯の外で業務ができない",
    "夜間や休日に業務端末から住基ネットの業務ができない。",
    "共通運用時間帯（平日の業務時間）以外は全国サーバと都道府県サーバが停止しています。時間外の業務が必要な場合は"
    "事前に運用時間延長を申請してください。年末年始（12月29日〜1月3日）も時間外です。",
    Category.OPERATIONS)
FILE_DELIVERY = Answer(
    "ファイル配信（プログラム・設定）が届かない",
    "全国センターから配信された更新プログラムがCSに届いていない。",
    "ファイル配信は共通運用時間帯の終了後に行われます。CSの受信ログで配信IDを確認し、未受信であれば翌日の再配信を"
    "お待ちください。2日続けて届かない場合はコールセンターで個別配信を手配します。",
    Category.FILE_DELIVERY)

ANSWERS = (LINE_DOWN, CS_UNREACHABLE, VEIN, OFF_HOURS, FILE_DELIVERY)

# A past call from Otaru, answered and closed.
OTARU_LINES = TicketDraft(
    "muni-01-002", Category.NETWORK, "回線断で転出証明書情報が送れない",
    "午前中から両系の回線断とのこと。CSから都道府県サーバへの通知がすべて送信待ちになっている。", caller="市民課 住基係")
OTARU_ANSWER = "通信事業者の局内設備の故障による回線断でした。13時に復旧し、送信待ちの通知は自動で再送されました。"


async def seed_knowledge(flow: TicketWorkflow, actor: str = "cc-lead") -> list[KbEntry]:
    return [await flow.save_kb(a.title, a.question, a.answer, a.category, actor) for a in ANSWERS]


async def seed_past_ticket(flow: TicketWorkflow, actor: str = "cc-lead") -> Ticket:
    ticket = await flow.open(OTARU_LINES, actor)
    await flow.answer(ticket.id, OTARU_ANSWER, actor)
    return await flow.move(ticket.id, TicketStatus.DONE, actor)
