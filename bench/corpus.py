"""A fixed corpus of chat conversations for judging the `auto` decision: built from a seed, no downloads.

Mixed the way a team's traffic is: mostly short asks, some long pastes (code, logs, documents,
data) with the question before or after them, follow-ups deep into long conversations, agent
system prompts of several KB, eleven languages, and now and then an image. The same seed gives
the same conversations on every machine, so agreement figures from different runs compare.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from typing import Any

SEED = 15
SIZE = 1200

# ---- what people ask, per language ---------------------------------------------------------

_ASKS: dict[str, tuple[str, ...]] = {
    "en": (
        "hi", "hello!", "hey, how are you?", "thanks!", "thank you, that helped a lot", "ok", "good morning", "bye for now",
        "What is the capital of France?", "Who wrote Pride and Prejudice?", "When did the Berlin Wall fall?",
        "How many moons does Jupiter have?", "What's the boiling point of water at sea level?", "Define photosynthesis.",
        "Where is Mount Kilimanjaro?", "How much does a blue whale weigh?", "Is a tomato a fruit? yes or no",
        "Who was the first person to walk on the moon?", "What is the difference between weather and climate?",
        "How do I make a sourdough starter from scratch?", "Can you suggest a weekend itinerary for Lisbon?",
        "Write a short poem about autumn leaves.", "Give me three ideas for a birthday party for a ten year old.",
        "Rewrite this paragraph so it sounds more formal.", "Summarize the text in three bullet points.",
        "Draft a polite email asking my landlord to fix the heating.", "What should I pack for a week of hiking in Scotland?",
        "Suggest a name for a small bakery that sells mostly bread.", "Explain the offside rule in football to a beginner.",
        "Write a Python function that parses ISO dates and returns a datetime.",
        "Why does this JavaScript code throw an error when the API returns an empty response?",
        "Refactor this class to use async and await instead of callbacks.",
        "How do I optimize this SQL query? It scans the whole table every time.",
        "Implement a binary search algorithm in Rust with tests.",
        "Explain what this git merge conflict means and how to resolve it before I commit.",
        "Write a Dockerfile for a Node app and a Kubernetes deployment for it.",
        "Debug this: the function returns None instead of the parsed config.",
        "Add type hints to this module and make the tests pass.",
        "Convert this callback-based code to use promises.",
        "Design a scalable architecture for a distributed job queue with low latency.",
        "What are the trade-offs between gRPC and websocket for a real-time protocol?",
        "How does TLS encryption and authentication work during the handshake?",
        "Explain how a neural network learns with backpropagation.",
        "How can I improve the throughput of my GPU inference server without hurting latency?",
        "What is the best way to handle concurrency and threading in a memory-bound service?",
        "Think step by step: a train leaves at 3 pm at 80 km/h and another at 4 pm at 100 km/h; when does the second catch up?",
        "Compare and contrast microservices and a monolith, and list the pros and cons of each.",
        "Analyze this argument and explain your reasoning: every swan I have seen is white, so all swans are white.",
        "Evaluate these three options and conclude which one we should pick for the launch.",
        "Let's think carefully about whether we should rent or buy a flat in the next two years.",
        "Prove that the square root of 2 is irrational, and show your work.",
        "Break down the causes of the 2008 financial crisis and weigh the options regulators had.",
        "First list the assumptions, then estimate how many piano tuners work in Chicago.",
        "1. Read the log. 2. Find the first error. 3. Suggest a fix.",
        "Can you check my reasoning? I infer that the cache is stale because the timestamps never change.",
        "Why is the sky blue?", "What does this error mean?", "Can you make it shorter?", "Now translate it into German.",
        "What would you change in the plan above?", "Please continue.", "and in Rust?", "Which of these is faster, and why?",
    ),
    "de": (
        "Hallo!", "Danke schön!", "Wie spät ist es in Tokio?", "Was ist die Hauptstadt von Australien?",
        "Kannst du mir ein Rezept für Apfelstrudel geben?", "Schreib eine kurze E-Mail an meinen Vermieter wegen der Heizung.",
        "Erkläre mir bitte den Unterschied zwischen Wetter und Klima.", "Fasse den folgenden Text in drei Sätzen zusammen.",
        "Schreibe eine Python-Funktion, die eine CSV-Datei einliest und die Summe einer Spalte berechnet.",
        "Warum wirft mein Code hier einen Fehler, wenn die API eine leere Antwort liefert?",
        "Vergleiche bitte die Vor- und Nachteile von Kubernetes und Docker Compose für ein kleines Team.",
        "Denk Schritt für Schritt nach: Wie viele Kilometer fährt ein Zug in drei Stunden bei 120 km/h?",
        "Wie funktioniert die Verschlüsselung bei HTTPS?", "Bitte übersetze das ins Englische.", "Mach es kürzer, bitte.",
    ),
    "fr": (
        "Bonjour !", "Merci beaucoup !", "Quelle est la capitale du Canada ?", "Peux-tu me donner une recette de ratatouille ?",
        "Rédige un court courriel pour décaler notre réunion à jeudi.", "Explique-moi la photosynthèse simplement.",
        "Résume ce texte en trois points.", "Écris une fonction JavaScript qui trie un tableau d'objets par date.",
        "Pourquoi ma requête SQL est-elle si lente sur une table de dix millions de lignes ?",
        "Compare les avantages et les inconvénients du télétravail pour une petite équipe.",
        "Réfléchis étape par étape : combien de secondes y a-t-il dans une semaine ?",
        "Comment fonctionne l'authentification par jeton dans une API REST ?", "Traduis ceci en espagnol, s'il te plaît.",
    ),
    "es": (
        "¡Hola!", "¡Gracias!", "¿Cuál es la capital de Perú?", "¿Me das una receta de paella valenciana?",
        "Escribe un correo breve para pedir un día libre el viernes.", "Explícame qué es la inflación con un ejemplo.",
        "Resume este texto en tres frases.", "Escribe una función en Python que valide direcciones de correo.",
        "¿Por qué falla mi consulta a la base de datos cuando hay muchos usuarios a la vez?",
        "Compara las ventajas y desventajas de alquilar o comprar una casa.",
        "Piensa paso a paso: si tengo 3 cajas con 12 manzanas y regalo 7, ¿cuántas me quedan?",
        "¿Cómo funciona el cifrado de extremo a extremo?", "Tradúcelo al inglés, por favor.",
    ),
    "pt": (
        "Olá!", "Obrigado!", "Qual é a capital do Brasil?", "Me dá uma receita de pão de queijo?",
        "Escreva um e-mail curto pedindo o reembolso da passagem.", "Explique o que é aprendizado de máquina em poucas palavras.",
        "Resuma o texto abaixo em três tópicos.", "Escreva uma função em JavaScript que conte as palavras de um texto.",
        "Por que meu servidor fica lento quando muitos usuários acessam ao mesmo tempo?",
        "Compare os prós e contras de trabalhar remoto.", "Traduza para o inglês, por favor.",
    ),
    "it": (
        "Ciao!", "Grazie mille!", "Qual è la capitale della Norvegia?", "Mi dai la ricetta del tiramisù?",
        "Scrivi una breve email per spostare l'appuntamento a lunedì.", "Spiegami cos'è un buco nero.",
        "Riassumi questo testo in tre punti.", "Scrivi una funzione Python che legga un file JSON.",
        "Confronta vantaggi e svantaggi dell'auto elettrica.", "Traducilo in inglese, per favore.",
    ),
    "ru": (
        "Привет!", "Спасибо!", "Какая столица Канады?", "Дай рецепт борща, пожалуйста.",
        "Напиши короткое письмо с просьбой перенести встречу.", "Объясни, что такое инфляция, простыми словами.",
        "Кратко перескажи этот текст в трёх пунктах.", "Напиши функцию на Python, которая сортирует список словарей по дате.",
        "Почему мой запрос к базе данных работает так медленно?", "Сравни плюсы и минусы удалённой работы.",
        "Подумай шаг за шагом: сколько минут в трёх сутках?", "Переведи это на английский.",
    ),
    "zh": (
        "你好！", "谢谢！", "法国的首都是哪里？", "给我一个番茄炒蛋的做法。", "帮我写一封简短的请假邮件。",
        "请用简单的话解释一下什么是通货膨胀。", "把下面这段话总结成三点。", "写一个 Python 函数，读取 CSV 文件并计算平均值。",
        "为什么我的数据库查询在高并发时这么慢？", "比较一下租房和买房的优缺点。", "请一步一步地思考：一周有多少秒？",
        "HTTPS 的加密是怎么工作的？", "把它翻译成英文。",
    ),
    "ja": (
        "こんにちは！", "ありがとう！", "日本で一番高い山は何ですか？", "カレーライスの作り方を教えてください。",
        "会議を来週に延期するメールを書いてください。", "光合成とは何か、簡単に説明してください。", "次の文章を三行で要約してください。",
        "配列を日付で並べ替える JavaScript の関数を書いてください。", "このエラーの原因は何ですか？", "英語に翻訳してください。",
    ),
    "ko": (
        "안녕하세요!", "감사합니다!", "캐나다의 수도는 어디인가요?", "김치찌개 만드는 법을 알려 주세요.",
        "회의를 다음 주로 미루자는 이메일을 써 주세요.", "인플레이션이 무엇인지 쉽게 설명해 주세요.", "다음 글을 세 줄로 요약해 주세요.",
        "파이썬으로 파일의 단어 수를 세는 함수를 작성해 주세요.", "영어로 번역해 주세요.",
    ),
    "ar": (
        "مرحبا!", "شكرا جزيلا!", "ما هي عاصمة اليابان؟", "أعطني وصفة لطبق الكبسة.", "اكتب رسالة قصيرة لتأجيل الاجتماع.",
        "اشرح لي ما هو التضخم بكلمات بسيطة.", "لخص النص التالي في ثلاث نقاط.", "ترجم هذا إلى الإنجليزية من فضلك.",
    ),
}

# ---- what people paste or get back: prose per language, code, logs, data ------------------

_PROSE: dict[str, tuple[str, ...]] = {
    "en": (
        "The committee met on Tuesday to review the budget for the coming year.",
        "Most of the discussion focused on the cost of maintaining the old library building.",
        "Several members argued that the roof should be repaired before winter.",
        "Others felt the money would be better spent on new books and longer opening hours.",
        "In the end, a compromise was reached and both projects will receive partial funding.",
        "The river has flooded the lower fields three times in the past decade.",
        "Farmers in the valley have started planting crops that tolerate wet soil.",
        "Our team shipped the new onboarding flow last week, and early feedback has been positive.",
        "Customers mentioned that the signup form is shorter and the instructions are clearer.",
        "We still see a drop-off on the payment page, which we plan to investigate next sprint.",
        "The service stores each request in a database and returns a response within a few milliseconds.",
        "When the cache is cold, latency rises sharply and the memory usage of each worker doubles.",
        "The museum's new wing displays paintings from the late nineteenth century.",
        "She walked along the harbour as the fishing boats came in with the evening tide.",
        "The recipe calls for two cups of flour, a pinch of salt and a little warm water.",
        "Researchers measured the temperature of the lake every morning for three years.",
        "The results suggest that the water is warming faster near the shore than in the middle.",
        "Please note that the office will be closed on Monday for the public holiday.",
        "The contract may be terminated by either party with thirty days written notice.",
        "All personal data is processed in accordance with the applicable privacy regulations.",
        "He had never seen snow before, and for a long moment he simply stood at the window.",
        "The quarterly report shows revenue growth of eight percent, driven mainly by new subscriptions.",
        "Support tickets about login problems fell by half after the password reset page was redesigned.",
        "The train was delayed by forty minutes because of a signal failure near the bridge.",
    ),
    "de": (
        "Der Ausschuss hat am Dienstag den Haushalt für das kommende Jahr besprochen.",
        "Die meisten Fragen betrafen die Kosten für die Sanierung der alten Bibliothek.",
        "Im Herbst werden die Blätter bunt und fallen langsam von den Bäumen.",
        "Unser Team hat letzte Woche die neue Anmeldung veröffentlicht, und die Rückmeldungen sind gut.",
        "Der Zug hatte wegen einer Signalstörung vierzig Minuten Verspätung.",
        "Bitte beachten Sie, dass das Büro am Montag wegen des Feiertags geschlossen ist.",
        "Die Ergebnisse zeigen, dass sich das Wasser am Ufer schneller erwärmt als in der Mitte des Sees.",
        "Der Vertrag kann von beiden Seiten mit einer Frist von dreißig Tagen gekündigt werden.",
    ),
    "fr": (
        "Le comité s'est réuni mardi pour examiner le budget de l'année prochaine.",
        "La plupart des échanges ont porté sur le coût de l'entretien de l'ancienne bibliothèque.",
        "Elle marchait le long du port pendant que les bateaux de pêche rentraient avec la marée du soir.",
        "Notre équipe a lancé le nouveau parcours d'inscription la semaine dernière.",
        "Le train avait quarante minutes de retard à cause d'une panne de signalisation.",
        "Veuillez noter que le bureau sera fermé lundi en raison du jour férié.",
        "Les résultats suggèrent que l'eau se réchauffe plus vite près du rivage.",
    ),
    "es": (
        "El comité se reunió el martes para revisar el presupuesto del próximo año.",
        "La mayoría de las preguntas trataron sobre el coste de reparar la biblioteca antigua.",
        "Caminaba por el puerto mientras los barcos de pesca volvían con la marea de la tarde.",
        "Nuestro equipo publicó el nuevo proceso de registro la semana pasada.",
        "El tren llegó con cuarenta minutos de retraso por una avería en la señalización.",
        "Tenga en cuenta que la oficina estará cerrada el lunes por el día festivo.",
        "Los resultados indican que el agua se calienta más rápido cerca de la orilla.",
    ),
    "pt": (
        "O comitê se reuniu na terça-feira para revisar o orçamento do próximo ano.",
        "A maior parte da conversa foi sobre o custo de reformar a biblioteca antiga.",
        "Nossa equipe lançou o novo cadastro na semana passada e o retorno foi positivo.",
        "O trem atrasou quarenta minutos por causa de uma falha na sinalização.",
        "Os resultados mostram que a água esquenta mais rápido perto da margem.",
    ),
    "it": (
        "Il comitato si è riunito martedì per esaminare il bilancio del prossimo anno.",
        "Camminava lungo il porto mentre le barche dei pescatori rientravano con la marea.",
        "Il treno è arrivato con quaranta minuti di ritardo per un guasto alla segnaletica.",
        "I risultati indicano che l'acqua si riscalda più in fretta vicino alla riva.",
    ),
    "ru": (
        "Комитет собрался во вторник, чтобы обсудить бюджет на следующий год.",
        "Большая часть вопросов касалась стоимости ремонта старой библиотеки.",
        "Поезд опоздал на сорок минут из-за неисправности сигнализации.",
        "Наша команда на прошлой неделе запустила новую форму регистрации.",
        "Результаты показывают, что вода у берега нагревается быстрее, чем в центре озера.",
    ),
    "zh": (
        "委员会周二开会，讨论了明年的预算。", "大部分问题都集中在旧图书馆的维修费用上。", "她沿着港口散步，渔船随着傍晚的潮水归来。",
        "我们团队上周发布了新的注册流程，反馈很好。", "由于信号故障，火车晚点了四十分钟。", "结果表明，湖岸附近的水温上升得比湖中心更快。",
    ),
    "ja": (
        "委員会は火曜日に来年度の予算について話し合いました。", "質問の多くは古い図書館の修理費用に関するものでした。",
        "信号の故障のため、電車は四十分遅れました。", "私たちのチームは先週、新しい登録画面を公開しました。",
        "結果から、岸の近くの水は湖の中央よりも早く温まることが分かりました。",
    ),
    "ko": (
        "위원회는 화요일에 내년 예산을 논의했습니다.", "대부분의 질문은 오래된 도서관의 수리 비용에 관한 것이었습니다.",
        "신호 고장으로 기차가 사십 분 늦게 도착했습니다.", "우리 팀은 지난주에 새로운 가입 절차를 공개했습니다.",
    ),
    "ar": (
        "اجتمعت اللجنة يوم الثلاثاء لمناقشة ميزانية العام المقبل.", "تأخر القطار أربعين دقيقة بسبب عطل في الإشارات.",
        "أطلق فريقنا الأسبوع الماضي صفحة التسجيل الجديدة.", "تشير النتائج إلى أن المياه قرب الشاطئ تسخن أسرع من وسط البحيرة.",
    ),
}

_NAMES = ("order", "user", "invoice", "session", "report", "item", "config", "payload", "record", "batch", "event", "token")
_CODE: tuple[Callable[[random.Random], str], ...] = (
    lambda r: (f"def load_{r.choice(_NAMES)}(path):\n    with open(path) as f:\n        data = json.load(f)\n"
               f"    return [x for x in data if x.get('{r.choice(_NAMES)}_id')]\n"),
    lambda r: (f"class {r.choice(_NAMES).title()}Store:\n    def __init__(self, db):\n        self.db = db\n\n"
               f"    async def get(self, key):\n        row = await self.db.fetch_one('SELECT * FROM {r.choice(_NAMES)}s WHERE id = ?', key)\n"
               "        if row is None:\n            raise KeyError(key)\n        return row\n"),
    lambda r: (f"export async function fetch{r.choice(_NAMES).title()}(id) {{\n  const res = await fetch(`/api/{r.choice(_NAMES)}s/${{id}}`);\n"
               "  if (!res.ok) throw new Error(res.statusText);\n  return res.json();\n}\n"),
    lambda r: (f"SELECT u.id, count(o.id) AS n\nFROM users u\nLEFT JOIN {r.choice(_NAMES)}s o ON o.user_id = u.id\n"
               f"WHERE o.created_at > now() - interval '{r.randint(2, 90)} days'\nGROUP BY u.id\nORDER BY n DESC;\n"),
    lambda r: (f"fn parse_{r.choice(_NAMES)}(input: &str) -> Result<Vec<u32>, ParseIntError> {{\n"
               "    input.split(',').map(|s| s.trim().parse()).collect()\n}\n"),
    lambda r: (f"func handle{r.choice(_NAMES).title()}(w http.ResponseWriter, req *http.Request) {{\n"
               "\tif req.Method != http.MethodPost {\n\t\thttp.Error(w, \"method not allowed\", 405)\n\t\treturn\n\t}\n}\n"),
    lambda r: f"    for i in range({r.randint(2, 50)}):\n        total += values[i] * weights[i]\n",
    lambda r: f"const {r.choice(_NAMES)}Count = items.filter((x) => x.active).length;\n",
)
_LOGS: tuple[Callable[[random.Random], str], ...] = (
    lambda r: f"2025-03-{r.randint(10, 28)}T1{r.randint(0, 9)}:{r.randint(10, 59)}:{r.randint(10, 59)}Z INFO worker-{r.randint(1, 9)} "
              f"processed {r.choice(_NAMES)} {r.randint(1000, 99999)} in {r.randint(2, 900)} ms\n",
    lambda r: f"2025-03-{r.randint(10, 28)}T1{r.randint(0, 9)}:{r.randint(10, 59)}:{r.randint(10, 59)}Z WARN pool at {r.randint(60, 99)}% "
              f"capacity, {r.randint(1, 40)} waiting\n",
    lambda r: (f"Traceback (most recent call last):\n  File \"app/{r.choice(_NAMES)}.py\", line {r.randint(10, 400)}, in handle\n"
               f"    result = parse(payload)\nValueError: invalid literal for int() with base 10: '{r.choice(_NAMES)}'\n"),
)
_DATA: tuple[Callable[[random.Random], str], ...] = (
    lambda r: f'{{"id": {r.randint(1, 99999)}, "name": "{r.choice(_NAMES)}", "qty": {r.randint(1, 40)}, "price": {r.randint(1, 999)}.{r.randint(10, 99)}}}\n',
    lambda r: f"{r.randint(1, 99999)},{r.choice(_NAMES)},{r.randint(1, 40)},{r.randint(1, 999)}.{r.randint(10, 99)}\n",
    lambda r: f"| {r.choice(_NAMES)} | {r.randint(1, 40)} | {r.randint(1, 999)} |\n",
)
_SYSTEM_SHORT = ("You are a helpful assistant.", "Answer briefly.", "You are a senior software engineer. Be precise.",
                 "Du bist ein hilfreicher Assistent.", "你是一个乐于助人的助手。")
_AGENT_RULES = (
    "You are a coding agent working in the user's repository. Read files before editing them.",
    "Use the tools to run tests; never claim a test passed without running it.",
    "Keep changes small and explain each one. Ask before deleting files.",
    "When a command fails, read the error, fix the cause, and run it again.",
    "Prefer the project's existing libraries; do not add dependencies without asking.",
    "Write commit messages in the imperative mood and keep the first line under 72 characters.",
)
_LANGS = tuple(_ASKS)
_LANG_WEIGHTS = (45, 7, 7, 7, 5, 4, 5, 8, 5, 4, 3)


def conversations(size: int = SIZE, seed: int = SEED) -> list[dict[str, Any]]:
    """`size` chat-completion bodies for `model: auto`, the same for the same seed."""
    rng = random.Random(seed)
    return [_conversation(rng) for _ in range(size)]


def _conversation(rng: random.Random) -> dict[str, Any]:
    lang = rng.choices(_LANGS, _LANG_WEIGHTS)[0]
    messages: list[dict[str, Any]] = []
    system = rng.random()
    if system < 0.35:
        messages.append({"role": "system", "content": rng.choice(_SYSTEM_SHORT)})
    elif system < 0.5:
        messages.append({"role": "system", "content": _filled(rng, lambda r: r.choice(_AGENT_RULES) + " ", _log_uniform(rng, 800, 20_000))})
    earlier = rng.choices((0, rng.randint(1, 3), rng.randint(4, 12), rng.randint(13, 40)), (45, 30, 17, 8))[0]
    for _ in range(earlier):
        messages.append({"role": "user", "content": _user_text(rng, lang, earlier_turn=True)})
        messages.append({"role": "assistant", "content": _reply(rng, lang)})
    last = rng.choice(_follow_ups(lang)) if earlier and rng.random() < 0.25 else _user_text(rng, lang, earlier_turn=False)
    messages.append({"role": "user", "content": last})
    if rng.random() < 0.08:
        _add_image(rng, messages)
    return {"model": "auto", "messages": messages}


def _user_text(rng: random.Random, lang: str, earlier_turn: bool) -> str:
    ask_lang = lang if rng.random() < 0.85 else "en"
    asks = " ".join(rng.choice(_ASKS[ask_lang]) for _ in range(rng.choices((1, 2, 3), (70, 22, 8))[0]))
    if rng.random() >= (0.25 if earlier_turn else 0.4):
        return asks
    paste = _paste(rng, lang, _log_uniform(rng, 120, 6_000 if earlier_turn else 300_000))
    where = rng.random()
    if where < 0.45:
        return f"{asks}\n\n{paste}"
    if where < 0.9:
        return f"{paste}\n\n{asks}"
    return f"{asks}\n\n{paste}\n\n{rng.choice(_ASKS[ask_lang])}"


def _paste(rng: random.Random, lang: str, chars: int) -> str:
    kind = rng.choices(("prose", "code", "log", "data"), (40, 30, 15, 15))[0]
    if kind == "prose":
        bank = _PROSE[lang if rng.random() < 0.8 else "en"]
        return _filled(rng, lambda r: r.choice(bank) + (" " if r.random() < 0.85 else "\n\n"), chars)
    if kind == "code":
        return "```\n" + _filled(rng, lambda r: r.choice(_CODE)(r) + "\n", chars) + "```"
    return _filled(rng, lambda r: r.choice(_LOGS if kind == "log" else _DATA)(r), chars)


def _reply(rng: random.Random, lang: str) -> str:
    chars = _log_uniform(rng, 20, 4_000)
    if rng.random() < 0.3:
        return _filled(rng, lambda r: r.choice(_PROSE[lang]) + " ", chars // 2) + "\n\n```\n" + _filled(rng, lambda r: r.choice(_CODE)(r), chars // 2) + "```"
    return _filled(rng, lambda r: r.choice(_PROSE[lang]) + " ", chars)


def _follow_ups(lang: str) -> tuple[str, ...]:
    return _ASKS[lang][-3:] if lang != "en" else ("yes", "continue", "Please continue.", "and in Rust?", "Can you make it shorter?",
                                                   "What does this error mean?", "thanks!", "ok, do it")


def _add_image(rng: random.Random, messages: list[dict[str, Any]]) -> None:
    users = [m for m in messages if m["role"] == "user"]
    target = rng.choice(users)
    if rng.random() < 0.7:
        data = base64.b64encode(rng.randbytes(_log_uniform(rng, 200, 200_000))).decode()
        url = f"data:image/png;base64,{data}"
    else:
        url = f"https://images.example.com/{rng.randint(1, 10**6)}.jpg"
    target["content"] = [{"type": "text", "text": target["content"]}, {"type": "image_url", "image_url": {"url": url}}]


def _filled(rng: random.Random, piece: Callable[[random.Random], str], chars: int) -> str:
    parts: list[str] = []
    length = 0
    while length < chars:
        parts.append(piece(rng))
        length += len(parts[-1])
    return "".join(parts).strip()


def _log_uniform(rng: random.Random, low: int, high: int) -> int:
    return round(low * (high / low) ** rng.random())
