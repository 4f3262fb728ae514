// Seed texts for the conformance corpus: prose in many scripts, code, numbers, emoji. The corpus generator mixes
// them with whitespace runs, control chars, special-token strings and NFD/NFKD variants.

export const PROSE = [
  "The quick brown fox jumps over the lazy dog. It's 5 o'clock somewhere, isn't it? We'll see; they've said they'd come.",
  'In 1969, Apollo 11 landed on the Moon. Neil Armstrong said: "That\'s one small step for [a] man, one giant leap for mankind."',
  'Café au lait, naïve résumé, coöperate, façade, jalapeño, Zürich, Ångström, Øresund, Łódź, Dvořák, İstanbul, straße.',
  'Лев Толстой написал «Войну и мир» в 1860-х годах. Это один из величайших романов мировой литературы.',
  'Η γλώσσα είναι το σπίτι του είναι. ΣΟΦΙΑ και σοφία· Ὀδυσσεύς, ἀρετή, ψυχή.',
  '東京は日本の首都です。人口は約1400万人で、世界最大級の都市圏を形成しています。',
  'ひらがなとカタカナ、そして漢字を混ぜて書くのが日本語の特徴です。ｶﾀｶﾅ（半角）も使われる。',
  '北京是中华人民共和国的首都，也是全国的政治、文化中心。繁體字：臺灣、廣東、學習。',
  '한국어는 한글로 표기합니다. 세종대왕이 1443년에 훈민정음을 창제했습니다.',
  'اللغة العربية هي إحدى أكثر اللغات انتشاراً في العالم، ويتحدثها أكثر من ٤٠٠ مليون شخص.',
  'עברית היא שפה שמית. שָׁלוֹם עֲלֵיכֶם! ספרים רבים נכתבו בה.',
  'हिन्दी भारत की राजभाषा है। नमस्ते, आप कैसे हैं? क्षत्रिय, ज्ञान, श्री।',
  'ภาษาไทยเป็นภาษาราชการของประเทศไทย ไม่มีการเว้นวรรคระหว่างคำ สวัสดีครับ',
  'বাংলা ভাষা বিশ্বের সপ্তম বৃহত্তম ভাষা। தமிழ் ஒரு பழமையான மொழி. ಕನ್ನಡ ಭಾಷೆ. മലയാളം.',
  'Tiếng Việt có sáu thanh điệu: ngang, huyền, sắc, hỏi, ngã, nặng. Người Việt Nam.',
  'Ελληνικά, Ἑλληνική, ქართული ენა, Հայերեն լեզու, አማርኛ ቋንቋ, ᚠᚢᚦᚨᚱᚲ, ᠮᠣᠩᠭᠣᠯ.',
  'Mathematical: ∀x∈ℝ, ∃y: x² + y² ≤ 1; ∑ᵢ aᵢ = ∫₀^∞ f(t) dt ≈ 3.14159… 𝔸𝔹ℂ 𝐀𝐁𝐂 𝟙𝟚𝟛',
  'Ligatures and compatibility: ﬁ ﬂ ﬀ ﬃ Ⅻ ① ㈱ ㎏ ＡＢＣ１２３ ½ ¼ ™ ℃ Å K',
  "Don't, won't, can't, shouldn't've, y'all'd've; 'S 'T 'RE 'VE 'M 'LL 'D; O'Neil's rock'n'roll.",
  'Prices: $1,234.56, €99,99, £0.05, ¥10000, ₹500, 25%, 3/4 cup, 1e-10, 0x1F, 0b1010, 6.02214076e23, -273.15°C.',
];

export const CODE = [
  'def fib(n):\n    """Return the n-th Fibonacci number."""\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: JavaScript source text, not a template
  'function add(a, b) {\n\treturn a + b; // tabs\n}\nconst xs = [1, 2, 3].map((x) => x ** 2);\nconsole.log(`sum=${xs.reduce((s, x) => s + x, 0)}`);\n',
  'fn main() {\n    let v: Vec<u32> = (0..10).filter(|x| x % 2 == 0).collect();\n    println!("{:?}", v);\n}\n',
  '{"name": "mptjs", "version": "0.1.0", "tags": ["a", "b"], "nested": {"x": null, "y": true, "z": -1.5e3}}',
  '<!DOCTYPE html>\n<html lang="en">\n  <body class="main">\n    <p>Hello &amp; welcome&nbsp;!</p>\n  </body>\n</html>\n',
  '#include <stdio.h>\nint main(void) {\n  for (int i = 0; i < 10; ++i) printf("%d\\n", i);\n  return 0;\n}\n',
  "SELECT id, name FROM users WHERE age >= 18 AND email LIKE '%@example.com' ORDER BY name DESC LIMIT 10;",
  '    if x:\n        pass\n\n\n    else:\n            y = [ ]  \n',
  '$ git commit -m "fix: handle \\r\\n" && npm run build -- --watch\r\nC:\\Users\\me\\file.txt\r\n',
  'https://example.com/path?q=tokenizer&lang=en#section-2 user@example.org 192.168.0.1:8080 /usr/local/bin',
];

export const EMOJI = [
  '👩‍👩‍👧‍👦',
  '🏳️‍🌈',
  '👍🏽',
  '🇯🇵🇫🇷',
  '1️⃣',
  '❤️‍🔥',
  '🧑🏿‍💻',
  '😀😃😄',
  '🤖',
  '✨',
  '©️',
  '🫠',
  '🏴󠁧󠁢󠁳󠁣󠁴󠁿',
];

export const SPACES = [
  ' ',
  '  ',
  '\t',
  '\n',
  '\r\n',
  '\r',
  '\u00a0',
  '\u3000',
  '\u2009',
  '\u200a',
  '\u2028',
  '\u0085',
  '\u200b',
  '\ufeff',
  '\u000b',
  '\u000c',
  '\u1680',
  '\u202f',
];

export const SPECIALS = [
  '<|endoftext|>',
  '<|padding|>',
  '<|endoftext',
  '|endoftext|>',
  '<|endoftext|><|endoftext|>',
  '<|padding|>>',
];
