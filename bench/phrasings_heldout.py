"""Held-out instruction sets for the PhoneFleet reference model.

These cases were written blind on 2026-12-07: the author did not see the
reference model's parsing rules, its docs, its tests, or the existing bench
phrasing cases. They are meant to measure how well the model understands
ordinary user phrasings.

- TUNING: may be used freely while tuning the reference model.
- FINAL: held out; to be measured once, after tuning is finished.

The two lists share no instructions and were written independently (FINAL
is not a translation of TUNING). Roughly one third of each list is Chinese.
"""

from bench_phrasings import AIR_ON, BT_ON, WIFI_OFF, Case, contact, foreground, in_cart, note, sms, switches

SETTINGS = "com.android.settings"
CONTACTS = "com.android.contacts"
MESSAGES = "com.android.messaging"
NOTES = "com.phonefleet.notes"
SHOP = "com.phonefleet.shop"
BANK = "com.phonefleet.bank"

# fmt: off
TUNING = [
    # wifi (8)
    Case("wifi", "Can you switch Wi-Fi on for me?", switches(wifi="1"), WIFI_OFF),
    Case("wifi", "wifi off pls", switches(wifi="0"), {}),
    Case("wifi", "Please disable WiFi.", switches(wifi="0"), {}),
    Case("wifi", "Enable wi-fi", switches(wifi="1"), WIFI_OFF),
    Case("wifi", "Kill the wifi", switches(wifi="0"), {}),
    Case("wifi", "打开WLAN", switches(wifi="1"), WIFI_OFF),
    Case("wifi", "把wifi关掉", switches(wifi="0"), {}),
    Case("wifi", "帮我开一下WiFi", switches(wifi="1"), WIFI_OFF),
    # bluetooth (6)
    Case("bluetooth", "Turn bluetooth on please", switches(bluetooth="1"), {}),
    Case("bluetooth", "Could you disable Bluetooth?", switches(bluetooth="0"), BT_ON),
    Case("bluetooth", "bluetooth on", switches(bluetooth="1"), {}),
    Case("bluetooth", "Switch off bluetooth, thanks", switches(bluetooth="0"), BT_ON),
    Case("bluetooth", "打开蓝牙", switches(bluetooth="1"), {}),
    Case("bluetooth", "请关闭蓝牙", switches(bluetooth="0"), BT_ON),
    # airplane (6)
    Case("airplane", "Put the phone in airplane mode", switches(airplane="1"), {}),
    Case("airplane", "Turn airplane mode off", switches(airplane="0"), AIR_ON),
    Case("airplane", "Can you enable flight mode?", switches(airplane="1"), {}),
    Case("airplane", "get me out of airplane mode", switches(airplane="0"), AIR_ON),
    Case("airplane", "开启飞行模式", switches(airplane="1"), {}),
    Case("airplane", "关掉飞行模式", switches(airplane="0"), AIR_ON),
    # two switches (6)
    Case("two switches", "Turn off wifi and turn on bluetooth", switches(wifi="0", bluetooth="1"), {}),
    Case("two switches", "Please enable both Wi-Fi and Bluetooth.", switches(wifi="1", bluetooth="1"), WIFI_OFF),
    Case("two switches", "Disable bluetooth and airplane mode", switches(bluetooth="0", airplane="0"), {**BT_ON, **AIR_ON}),
    Case("two switches", "turn airplane mode off and wifi back on", switches(airplane="0", wifi="1"), AIR_ON),
    Case("two switches", "关闭WiFi，打开蓝牙", switches(wifi="0", bluetooth="1"), {}),
    Case("two switches", "把蓝牙和WiFi都关掉", switches(bluetooth="0", wifi="0"), BT_ON),
    # contact (8)
    Case("contact", "Add a contact named Alice Chen with number 4155550123", contact("Alice Chen", "4155550123"), {}),
    Case("contact", "Save a new contact Bob, 212-555-0187", contact("Bob", "2125550187"), {}),
    Case("contact", "Can you create a contact for Maria Lopez? Her number is +1 650 555 0199", contact("Maria Lopez", "16505550199"), {}),
    Case("contact", "new contact: David Kim 3105550142", contact("David Kim", "3105550142"), {}),
    Case("contact", "Please add Priya to my contacts, phone number (408) 555-0176", contact("Priya", "4085550176"), {}),
    Case("contact", "添加联系人张伟，电话13800138000", contact("张伟", "13800138000"), {}),
    Case("contact", "帮我新建一个联系人，名字叫李娜，号码是139 1234 5678", contact("李娜", "13912345678"), {}),
    Case("contact", "把王强的电话 186-0000-1111 存到通讯录", contact("王强", "18600001111"), {}),
    # sms (8)
    Case("sms", "Text 5551234567 saying I'm running late", sms("5551234567", "I'm running late"), {}),
    Case("sms", "Send a message to 4155550123: Dinner at 7?", sms("4155550123", "Dinner at 7?"), {}),
    Case("sms", "Can you send an SMS to 2125550187 with the message \"Call me when you land\"", sms("2125550187", "Call me when you land"), {}),
    Case("sms", "sms 6505550199 that reads see you tomorrow", sms("6505550199", "see you tomorrow"), {}),
    Case("sms", "Please message 3105550142 and say \"Happy birthday!\"", sms("3105550142", "Happy birthday!"), {}),
    Case("sms", "给13800138000发短信说我到了", sms("13800138000", "我到了"), {}),
    Case("sms", "发一条信息给13912345678，内容是：明天见", sms("13912345678", "明天见"), {}),
    Case("sms", "给18600001111发个短信：“会议改到三点”", sms("18600001111", "会议改到三点"), {}),
    # note (8)
    Case("note", "Create a note titled Groceries that says milk, eggs, bread", note("Groceries", "milk, eggs, bread"), {}),
    Case("note", "Make a note: pick up dry cleaning", note(None, "pick up dry cleaning"), {}),
    Case("note", "Take a note that says \"Call the dentist on Monday\"", note(None, "Call the dentist on Monday"), {}),
    Case("note", "Can you jot down 'Parking spot B12' in my notes?", note(None, "Parking spot B12"), {}),
    Case("note", "New note called Ideas: build a treehouse", note("Ideas", "build a treehouse"), {}),
    Case("note", "新建一个笔记，标题是购物清单，内容是苹果、牛奶", note("购物清单", "苹果、牛奶"), {}),
    Case("note", "记一下：周五交报告", note(None, "周五交报告"), {}),
    Case("note", "帮我在备忘录里写“明天早上八点开会”", note(None, "明天早上八点开会"), {}),
    # shop (8)
    Case("shop", "Add the Wireless Earbuds to my cart", in_cart("Wireless Earbuds"), {}),
    Case("shop", "put a phone case in the cart", in_cart("Phone Case"), {}),
    Case("shop", "Can you add USB-C Cable to the shopping cart?", in_cart("USB-C Cable"), {}),
    Case("shop", "I want to buy the Smart Watch, add it to my cart please", in_cart("Smart Watch"), {}),
    Case("shop", "add a yoga mat to cart", in_cart("Yoga Mat"), {}),
    Case("shop", "把Bluetooth Speaker加入购物车", in_cart("Bluetooth Speaker"), {}),
    Case("shop", "帮我在商城里把 Coffee Mug 加到购物车", in_cart("Coffee Mug"), {}),
    Case("shop", "购物车里加一个 desk lamp", in_cart("Desk Lamp"), {}),
    # open app (6)
    Case("open app", "Open Settings", foreground(SETTINGS), {}),
    Case("open app", "Can you bring up my contacts?", foreground(CONTACTS), {}),
    Case("open app", "launch the bank app", foreground(BANK), {}),
    Case("open app", "open messages", foreground(MESSAGES), {}),
    Case("open app", "打开备忘录", foreground(NOTES), {}),
    Case("open app", "打开商城", foreground(SHOP), {}),
]

FINAL = [
    # wifi (8)
    Case("wifi", "Please turn the Wi-Fi on.", switches(wifi="1"), WIFI_OFF),
    Case("wifi", "switch wifi off", switches(wifi="0"), {}),
    Case("wifi", "Can you deactivate wifi?", switches(wifi="0"), {}),
    Case("wifi", "activate WiFi", switches(wifi="1"), WIFI_OFF),
    Case("wifi", "I don't need wifi right now, turn it off", switches(wifi="0"), {}),
    Case("wifi", "开启Wi-Fi", switches(wifi="1"), WIFI_OFF),
    Case("wifi", "关闭WLAN", switches(wifi="0"), {}),
    Case("wifi", "能帮我把无线网打开吗？", switches(wifi="1"), WIFI_OFF),
    # bluetooth (6)
    Case("bluetooth", "enable bluetooth", switches(bluetooth="1"), {}),
    Case("bluetooth", "Could you switch Bluetooth on?", switches(bluetooth="1"), {}),
    Case("bluetooth", "bluetooth off pls", switches(bluetooth="0"), BT_ON),
    Case("bluetooth", "Please turn off Bluetooth.", switches(bluetooth="0"), BT_ON),
    Case("bluetooth", "开一下蓝牙", switches(bluetooth="1"), {}),
    Case("bluetooth", "蓝牙关了吧", switches(bluetooth="0"), BT_ON),
    # airplane (6)
    Case("airplane", "Turn on airplane mode please", switches(airplane="1"), {}),
    Case("airplane", "Switch to flight mode", switches(airplane="1"), {}),
    Case("airplane", "disable airplane mode", switches(airplane="0"), AIR_ON),
    Case("airplane", "Can you take the phone off airplane mode?", switches(airplane="0"), AIR_ON),
    Case("airplane", "打开飞行模式", switches(airplane="1"), {}),
    Case("airplane", "请关闭飞行模式", switches(airplane="0"), AIR_ON),
    # two switches (6)
    Case("two switches", "Turn on wifi and bluetooth", switches(wifi="1", bluetooth="1"), WIFI_OFF),
    Case("two switches", "Switch off Bluetooth and Wi-Fi", switches(bluetooth="0", wifi="0"), BT_ON),
    Case("two switches", "Please turn wifi off and enable airplane mode", switches(wifi="0", airplane="1"), {}),
    Case("two switches", "Turn airplane mode off, then turn bluetooth on", switches(airplane="0", bluetooth="1"), AIR_ON),
    Case("two switches", "打开WiFi和蓝牙", switches(wifi="1", bluetooth="1"), WIFI_OFF),
    Case("two switches", "关闭飞行模式并打开WiFi", switches(airplane="0", wifi="1"), AIR_ON),
    # contact (8)
    Case("contact", "Add Tom Baker to contacts, 617-555-0111", contact("Tom Baker", "6175550111"), {}),
    Case("contact", "Create a new contact: Sarah, 202 555 0144", contact("Sarah", "2025550144"), {}),
    Case("contact", "save contact Kevin O'Neil with phone +1 (718) 555-0162", contact("Kevin O'Neil", "17185550162"), {}),
    Case("contact", "Could you add a contact called Emma Wilson? Number: 9175550128", contact("Emma Wilson", "9175550128"), {}),
    Case("contact", "Add Lucas to my address book with the number 512-555-0135", contact("Lucas", "5125550135"), {}),
    Case("contact", "添加联系人刘洋，手机号15012345678", contact("刘洋", "15012345678"), {}),
    Case("contact", "新建联系人 陈静 电话 137-1234-5678", contact("陈静", "13712345678"), {}),
    Case("contact", "帮我把赵磊加到联系人里，号码是 188 8888 6666", contact("赵磊", "18888886666"), {}),
    # sms (8)
    Case("sms", "Send a text to 6175550111 saying On my way", sms("6175550111", "On my way"), {}),
    Case("sms", "text 2025550144: can you pick up milk?", sms("2025550144", "can you pick up milk?"), {}),
    Case("sms", "Could you SMS 9175550128 with the message 'Meeting moved to 3pm'", sms("9175550128", "Meeting moved to 3pm"), {}),
    Case("sms", "Send \"Thanks for everything\" to 5125550135", sms("5125550135", "Thanks for everything"), {}),
    Case("sms", "Message 7185550162 that reads: the package arrived", sms("7185550162", "the package arrived"), {}),
    Case("sms", "给15012345678发短信，内容：晚上一起吃饭吧", sms("15012345678", "晚上一起吃饭吧"), {}),
    Case("sms", "发短信给13712345678说“生日快乐”", sms("13712345678", "生日快乐"), {}),
    Case("sms", "帮我给18888886666发一条短信：我已经出发了", sms("18888886666", "我已经出发了"), {}),
    # note (8)
    Case("note", "Write a note titled Packing List that says passport, charger, socks", note("Packing List", "passport, charger, socks"), {}),
    Case("note", "note: buy a birthday gift for mom", note(None, "buy a birthday gift for mom"), {}),
    Case("note", "Can you save a note saying 'Gate code 4821'?", note(None, "Gate code 4821"), {}),
    Case("note", "Add a note called Books with the text Dune and Neuromancer", note("Books", "Dune and Neuromancer"), {}),
    Case("note", "Please create a note: water the plants on Sunday", note(None, "water the plants on Sunday"), {}),
    Case("note", "记个笔记，标题“旅行”，内容“订酒店和机票”", note("旅行", "订酒店和机票"), {}),
    Case("note", "新建备忘录：下周二交房租", note(None, "下周二交房租"), {}),
    Case("note", "帮我写个笔记，内容是给爸爸打电话", note(None, "给爸爸打电话"), {}),
    # shop (8)
    Case("shop", "Add Mechanical Keyboard to my cart", in_cart("Mechanical Keyboard"), {}),
    Case("shop", "please put the laptop stand in my shopping cart", in_cart("Laptop Stand"), {}),
    Case("shop", "Can you add a Power Bank 10000mAh to the cart?", in_cart("Power Bank 10000mAh"), {}),
    Case("shop", "I'd like to buy headphones, add them to the cart", in_cart("Headphones"), {}),
    Case("shop", "add running shoes to cart", in_cart("Running Shoes"), {}),
    Case("shop", "把Water Bottle加到购物车", in_cart("Water Bottle"), {}),
    Case("shop", "在商城把 sunglasses 加入购物车", in_cart("Sunglasses"), {}),
    Case("shop", "帮我把一个 Backpack 放进购物车", in_cart("Backpack"), {}),
    # open app (6)
    Case("open app", "open the Shop app", foreground(SHOP), {}),
    Case("open app", "Go to settings", foreground(SETTINGS), {}),
    Case("open app", "Can you open my notes?", foreground(NOTES), {}),
    Case("open app", "launch contacts", foreground(CONTACTS), {}),
    Case("open app", "打开银行", foreground(BANK), {}),
    Case("open app", "打开短信", foreground(MESSAGES), {}),
]
# fmt: on
