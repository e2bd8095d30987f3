"""A labelled synthetic set of citizens' items, for measuring category suggestion and for intake load.

Each leaf category has situations written the way callers describe them, mostly without the
directory's keywords, so that keyword matching alone cannot label them and past routing must teach.
"""

import random
from collections.abc import Iterator

SITUATIONS: dict[str, tuple[str, ...]] = {
    "hr_social_security.social_security_card": (
        "卡片丢了想重新办一张", "银行说我的卡没有开通金融功能", "卡上照片是十年前的想换",
        "卡里的医保功能用不了", "去药店刷卡提示卡片失效",
    ),
    "hr_social_security.remote_medical_settlement": (
        "在外省住院回来报销不了", "孩子在广州看病费用怎么结算", "退休后跟子女在北京生活看病怎么办",
        "跨省住院要先办什么手续", "外地医院说没有备案不能直接结算",
    ),
    "hr_social_security.insured_information": (
        "查不到我前几年交费的记录", "单位交了但系统里没有显示", "名字录错了一个字要改",
        "想打一份交费证明给孩子上学用", "账户里的钱和实际对不上",
    ),
    "hr_social_security.landless_farmer_pension": (
        "村里的地被征了养老怎么交", "征地以后答应给的养老待遇没落实", "被征地人员的保险补贴没到账",
        "六十岁了征地保险还没开始领",
    ),
    "hr_social_security.resident_insurance": (
        "今年的医保在哪里交", "自己没工作想交养老保险", "村里的合作医疗交多少钱", "手机上怎么给父母交医保",
        "打零工的人怎么参保",
    ),
    "hr_social_security.unemployment_subsidy": (
        "公司倒闭了我能领多少钱", "被辞退以后的补助怎么申请", "领了三个月就停发了", "企业申请稳定岗位的返还款",
    ),
    "hr_social_security.vocational_qualification": (
        "电工证考试在哪里报名", "考证的成绩什么时候出", "护理员考试的时间", "拿到的证书网上查不到",
        "评中级要什么条件",
    ),
    "emergency_management.epidemic_prevention": (
        "从外地回来要不要报备", "小区有人发烧没人管", "检测点排队太久", "码变成黄色了怎么办",
        "出差回来要不要居家",
    ),
    "emergency_management.work_safety": (
        "厂里工人没戴安全帽在高处干活", "小作坊晚上偷偷生产", "工人受伤老板不管", "仓库里堆满鞭炮没人管",
        "矿井作业没有防护",
    ),
    "emergency_management.fire_hazards": (
        "楼道里堆满纸箱杂物", "有人把电瓶车推进电梯", "楼下门店灭火器都过期了", "消防设施是坏的",
        "一楼住户从窗户拉线给车充电",
    ),
    "emergency_management.natural_disasters": (
        "下大雨后路上积水到膝盖", "后山石头往下滚很危险", "河水快漫上来了", "结冰路面很滑没人撒盐",
        "房子后面的坡裂开了",
    ),
    "emergency_management.hazardous_chemicals": (
        "附近工厂有刺鼻的化学味", "罐车停在居民区", "煤气罐放在路边没人管", "仓库存放易燃化学原料",
        "加油站旁边在动火",
    ),
    "urban_rural_planning_construction.illegal_construction": (
        "邻居在楼顶又搭了一层", "一楼住户把院子围起来建房", "小区绿地上盖了铁皮房", "有人在河边私自建房",
        "楼下门面往外扩建",
    ),
    "urban_rural_planning_construction.construction_sites": (
        "工程车把路弄得全是泥", "工地晚上十二点还在打桩", "灰尘飘到家里擦都擦不完", "运土车没盖布一路撒",
        "工地围挡倒了",
    ),
    "urban_rural_planning_construction.roads_bridges": (
        "路中间有个大坑晚上看不见", "马路下沉了一块", "桥上栏杆断了", "步行道的砖都翘起来了",
        "整条街晚上没有灯",
    ),
    "urban_rural_planning_construction.water_supply_drainage": (
        "家里水龙头出来的是黄水", "早上没有水用", "楼上水压太小", "路边的下水口堵了一直冒水", "一下雨小区就淹",
    ),
    "urban_rural_planning_construction.gas_supply": (
        "新房子想开通管道气", "家里闻到一股气味怀疑漏气", "突然没气做不了饭", "气费怎么这么贵", "开户要等多久",
    ),
    "urban_rural_planning_construction.old_community_renovation": (
        "我们小区什么时候改造", "老楼想装个电梯上下方便", "改造以后墙皮又掉了", "雨水和污水管还是混在一起",
        "改造工程拖了一年",
    ),
    "housing_land.property_registration": (
        "买的二手房证一直办不下来", "房子过户要什么材料", "父母的房子继承怎么办证", "证上面积写错了",
        "交了钱三个月还拿不到证",
    ),
    "housing_land.commercial_housing": (
        "买的房子到期了还不交", "新房子墙面开裂漏水", "楼盘停工好几个月", "合同上写的配套都没有",
        "交房时面积缩水",
    ),
    "housing_land.housing_security": (
        "申请廉价租住的房子要什么条件", "排队三年还没分到房", "租金补助什么时候发", "引进的人才能不能住公寓",
        "分配的房子被别人转租",
    ),
    "housing_land.land_expropriation": (
        "房子被划进去了补偿太低", "村里的地被占了钱没给", "安置房迟迟不建", "强行推了我家的房",
        "补偿标准不公开",
    ),
    "housing_land.housing_fund": (
        "离职了想把钱取出来", "贷款额度能批多少", "单位不给交这笔钱", "租房能不能提取", "异地买房能不能用",
    ),
    "transportation.ride_hailing": (
        "叫的车司机要我取消订单", "司机绕路多收钱", "平台派的车和车牌不一样", "司机态度恶劣把我扔在半路",
        "接单以后一直不来",
    ),
    "transportation.driving_schools": (
        "报名交了钱一直排不上车", "教练索要好处费", "想退学对方不退钱", "考试一直约不上",
        "说好的包过结果要加钱",
    ),
    "transportation.taxis": (
        "司机不打表一口价", "晚上打车司机挑客", "司机说不去那么近的地方", "车上计价器跳得特别快",
        "下车没给发票",
    ),
    "transportation.public_buses": (
        "等了四十分钟一趟车都没有", "司机开车太猛乘客摔倒", "末班车提前开走了", "站牌上的信息不对",
        "想增加一条线到新区",
    ),
    "transportation.traffic_order": (
        "路口的灯坏了车乱开", "小区门口天天堵", "大货车在市区超速", "学校门口接孩子的车乱停",
        "电动车逆行很危险",
    ),
    "public_security.household_registration": (
        "孩子出生了怎么上户", "身份证丢了怎么补", "外地人怎么办理本地居住", "结婚后户口怎么迁",
        "改名字要什么手续",
    ),
    "public_security.fraud": (
        "接到自称客服的电话转了钱", "网上兼职被骗了押金", "有人冒充公安让我转账", "投资平台突然打不开",
        "老人被推销保健品骗了",
    ),
    "public_security.public_order": (
        "晚上有人在楼下打架", "电动车电瓶被偷了", "有人喝醉在店里闹事", "小区里有陌生人撬门",
        "一群人在路边拦车要钱",
    ),
    "public_security.entry_exit": (
        "想带孩子去香港旅游要办什么", "出国留学证件怎么办", "证件快过期了怎么换", "去澳门的签注怎么续",
        "去台湾需要什么手续",
    ),
    "public_security.gambling_drugs": (
        "楼上天天有人打牌到半夜还赌钱", "出租屋里有人聚集吸东西", "棋牌室里赌得很大", "酒店里有不正当交易",
        "网上有人拉人赌博",
    ),
    "city_appearance_life_services.cables": (
        "楼外面的线乱七八糟挂着", "电线垂下来快碰到人头", "通讯线断了掉在路上", "墙上拉了一根线通到路边",
        "一捆线横穿马路",
    ),
    "city_appearance_life_services.manhole_covers": (
        "路上有个洞盖子没了", "盖子响得很厉害晚上吵人", "人行道上的盖子塌了", "盖子翘起来绊倒了人",
        "下水口盖子被偷了",
    ),
    "city_appearance_life_services.fire_escape_parking": (
        "小区的救援通道被车堵死了", "楼下通道停满了私家车", "应急通道上有人摆摊", "消防车进不来",
        "物业不管乱停车堵路",
    ),
    "city_appearance_life_services.noise": (
        "楼下跳舞的音乐太大声", "隔壁装修天天电钻", "凌晨还有人大声唱歌", "门店外面放喇叭吆喝",
        "酒吧半夜音乐震天响",
    ),
    "city_appearance_life_services.cooking_fumes": (
        "楼下饭店的烟直接排到我家窗口", "夜宵摊烤肉的烟呛得人受不了", "餐馆排气管对着居民楼",
        "厨房的烟没有经过处理", "晚上烟熏得开不了窗",
    ),
    "city_appearance_life_services.garbage_station_odour": (
        "小区门口的垃圾点臭气熏天", "垃圾好几天没人拉", "夏天垃圾房苍蝇很多", "转运车漏出脏水",
        "垃圾房离住户太近",
    ),
    "city_appearance_life_services.property_management": (
        "管理公司收费不干事", "电梯坏了一个月没修", "小区保安形同虚设", "业主大会成立不了", "停车位被乱收费",
    ),
    "finance_commerce.financial_investment": (
        "公司承诺年化百分之二十的回报", "存进去的钱取不出来", "有人到小区里拉老人投钱", "理财公司老板跑路了",
        "说是保本结果亏了一半",
    ),
    "finance_commerce.consumer_rights": (
        "网上买的衣服不给退", "买到的手机是翻新机", "商家说的功能没有", "家电坏了不给保修", "吃饭发现菜里有虫",
    ),
    "finance_commerce.prepaid_cards": (
        "办的健身会员店关门了", "理发店充的钱用不了", "美容店换老板不认账", "游泳馆倒闭余额没退",
        "洗车店跑路了",
    ),
    "finance_commerce.prices": (
        "停车场收费没有公示", "景区门口水卖十块一瓶", "药店同一种药价格差很多", "物价突然上涨",
        "超市标签价和结账不一样",
    ),
    "finance_commerce.fiscal_subsidies": (
        "家电换新的补助什么时候到", "种粮的补贴没发", "政府发的购物券怎么领", "买新能源车的补助",
        "困难家庭补助怎么申请",
    ),
    "resources_environment.air_pollution": (
        "工厂烟囱冒黑烟", "有人在田里烧秸秆", "附近厂子排出的气味刺鼻", "搅拌站灰尘很大", "晚上偷偷排放废气",
    ),
    "resources_environment.water_pollution": (
        "河里的水发黑发臭", "厂子往河里排脏水", "池塘里死了很多鱼", "养猪场的粪水流进河", "江边有排水管冒泡沫",
    ),
    "resources_environment.solid_waste": (
        "有人半夜在路边倒建筑渣土", "山沟里堆了一大堆废料", "厂里的废渣乱堆", "工业垃圾倒在农田",
        "装修垃圾扔在绿化带",
    ),
    "resources_environment.illegal_mining": (
        "河里有船晚上偷偷挖沙", "山上有人私自开石头", "挖机在河道作业", "采石的炮声震坏房子", "运沙车夜里进出",
    ),
    "resources_environment.greening": (
        "小区里的大树被砍了", "树枝挡住了窗户要修", "公园的草都枯了", "行道树快倒了很危险", "绿地被人种了菜",
    ),
    "science_education_culture_health.school_enrolment": (
        "孩子上小学分到很远的学校", "新搬家孩子怎么转学", "一年级报名什么时候开始",
        "户口和房子不在一起能不能读书", "幼儿园报不上名",
    ),
    "science_education_culture_health.off_campus_training": (
        "周末还有机构偷偷给孩子上课", "机构收了一年学费关门了", "补习班老师没资质", "托管班条件很差",
        "暑假班收费太高",
    ),
    "science_education_culture_health.school_fees": (
        "学校让买指定的练习册", "午餐费收得不合理", "校服一套三百多", "学校收赞助费", "班主任组织有偿补习",
    ),
    "science_education_culture_health.medical_services": (
        "在医院等了三个小时", "手术后出了问题医院推卸责任", "号太难抢", "医生态度很差", "诊所乱开药",
    ),
    "science_education_culture_health.vaccination": (
        "孩子的针在哪里打", "打完一针第二针约不上", "社区说没有苗了", "老人能不能打", "打针后发烧怎么办",
    ),
    "science_education_culture_health.culture_tourism": (
        "跟团去玩被强制购物", "景区门票涨价", "网吧让未成年人进去", "旅行团行程被改了", "周末有什么活动",
    ),
}
PLACES = ["天元区嵩山路", "芦淞区建宁街道", "荷塘区月塘街道", "石峰区田心街道", "渌口区南洲镇", "醴陵市西山街道",
          "攸县联星街道", "茶陵县云阳街道", "炎陵县霞阳镇", "天元区栗雨街道", "芦淞区贺家土街道"]
ESTATES = ["幸福小区", "湘江花园", "钻石小区", "新华西路", "滨江路", "建设北路", "长江南路", "泰山路", "车站路"]
OPENINGS = ["你好，", "我想反映一下，", "请问，", "", "", "我要投诉，", "麻烦问一下，", "我是这里的居民，"]
CLOSINGS = ["希望尽快处理。", "请相关部门管一管。", "谢谢。", "", "已经好几次了。", "请给个答复。", "非常着急。"]
TIMES = ["", "最近一个月", "昨天晚上", "这几天", "每天", "上个星期", "今天早上"]


def _keyword_word(keywords: list[str], rng: random.Random) -> str:
    return rng.choice(keywords) if keywords else ""


def labelled_items(keywords: dict[str, list[str]], *, per_category: int, seed: int = 12345,
                   keyword_share: float = 0.35, first_situation: bool | None = None) -> Iterator[tuple[str, str]]:
    """(text, category code) pairs; `keyword_share` of them name one of the category's keywords.

    first_situation True uses only each category's first situation, False all but it, None all: a
    model trained on the others meets the first as a way of putting things it has never seen.
    """
    rng = random.Random(seed)
    for code in sorted(SITUATIONS):
        situations = list(SITUATIONS[code])
        if first_situation is not None:
            situations = situations[:1] if first_situation else situations[1:]
        for _ in range(per_category):
            parts = [rng.choice(OPENINGS), rng.choice(PLACES), rng.choice(ESTATES), rng.choice(TIMES),
                     rng.choice(situations)]
            if rng.random() < keyword_share:
                parts.append(f"，是{_keyword_word(keywords.get(code, []), rng)}的问题")
            if rng.random() < 0.3:
                parts.append("，" + rng.choice(situations))
            parts.append("，" + rng.choice(CLOSINGS))
            yield "".join(parts), code


def split(items: list[tuple[str, str]], *, held_out: float = 0.2, seed: int = 7
          ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """A shuffled (training, held-out) split."""
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    cut = int(len(shuffled) * (1 - held_out))
    return shuffled[:cut], shuffled[cut:]


def accuracy(model, items: list[tuple[str, str]], min_confidence: float = 0.0) -> tuple[float, float]:
    """(accuracy on the items the model is confident about, share of items it is confident about)."""
    confident = correct = 0
    for text, code in items:
        suggestion = model.suggest(text)
        if suggestion.code is not None and suggestion.confidence >= min_confidence:
            confident += 1
            correct += suggestion.code == code
    return (correct / confident if confident else 0.0), confident / len(items)
