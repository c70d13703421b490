"""Name and postcode frequencies for a synthetic population of children in England.

Rough relative weights written for the demo from general knowledge of names given to children
in England and Wales over the last two decades; not official statistics.
"""

from __future__ import annotations

GIRLS = """Olivia 60|Amelia 58|Isla 45|Ava 44|Mia 40|Ivy 30|Lily 38|Isabella 32|Sophia 30|Grace 30
Freya 28|Emily 34|Poppy 26|Ella 28|Evie 28|Charlotte 28|Florence 22|Sienna 18|Willow 16|Aria 18
Daisy 18|Alice 18|Sofia 16|Phoebe 16|Harper 14|Jessica 20|Ruby 22|Chloe 22|Emma 12|Lucy 18
Hannah 16|Sophie 20|Millie 16|Matilda 12|Rosie 14|Elsie 14|Maisie 12|Erin 12|Holly 12|Scarlett 14
Eleanor 12|Elizabeth 12|Zara 12|Layla 12|Amelie 10|Aisha 14|Fatima 14|Maryam 12|Zainab 10|Hafsa 6
Khadija 6|Hawa 4|Amina 8|Ayesha 6|Safa 4|Noor 6|Anaya 8|Aaliyah 8|Priya 6|Simran 4
Jasmine 10|Leah 10|Megan 10|Bethany 8|Abigail 10|Niamh 6|Aoife 4|Siobhan 3|Ciara 4|Orla 4
Zofia 4|Oliwia 5|Zuzanna 4|Julia 6|Maja 5|Natalia 4|Chidera 3|Adaeze 3|Precious 5|Blessing 4
Favour 4|Temitope 2|Chiamaka 2|Nkechi 2|Kemi 2|Zoë 6|Chloé 2|Renée 2|Mei 3|Xin 2|Yan 2
Anastasia 3|Victoria 6|Rebecca 8|Samantha 5|Alexandra 5|Gabriella 4|Nevaeh 3|Imogen 8|Esme 8"""

BOYS = """Muhammad 55|Noah 50|Oliver 55|George 48|Arthur 40|Leo 40|Harry 38|Oscar 36|Archie 34
Henry 32|Theodore 30|Freddie 30|Jack 36|Charlie 34|Theo 28|Alfie 28|Jacob 28|Thomas 28|Finley 20
Arlo 16|William 32|Lucas 26|Isaac 22|Teddy 18|Edward 18|Joshua 24|James 26|Samuel 20|Max 20
Ethan 20|Alexander 20|Joseph 20|Daniel 18|Harrison 14|Benjamin 16|Mason 16|Logan 14|Dylan 14
Riley 12|Jaxon 10|Sebastian 12|Reuben 10|Hugo 10|Louis 12|Frederick 8|Rory 10|Albie 10|Ronnie 10
Mohammed 20|Mohammad 8|Ibrahim 12|Yusuf 14|Omar 12|Ali 12|Ahmed 10|Hamza 12|Zayn 10|Ayaan 10
Adam 16|Idris 6|Bilal 6|Hassan 8|Hussain 8|Abdullah 8|Mustafa 6|Ismail 6|Arjun 8|Rohan 6
Harvey 12|Kai 10|Tyler 10|Callum 8|Connor 8|Liam 10|Sean 6|Cian 4|Eoin 3|Rhys 6
Jakub 6|Szymon 4|Kacper 5|Filip 5|Mateusz 4|Wiktor 3|Chidi 3|Chukwuemeka 2|Oluwaseun 3
Tobi 4|Femi 3|Kwame 3|Kofi 3|Tunde 2|Jayden 10|Jaden 4|Aiden 10|Aidan 4|Leon 8|Elijah 12
Nathan 10|Matthew 10|Michael 10|Christopher 6|Nicholas 5|Luca 10|Mateo 8|José 3|Ryan 10
Wei 3|Jun 2|Hao 2|Zachary 8|Toby 10|Elliot 8|Jude 10|Stanley 8|Sonny 8|Tommy 8"""

FAMILY = """Smith 90|Jones 60|Taylor 45|Brown 45|Williams 40|Wilson 30|Johnson 30|Davies 30
Robinson 22
Wright 22|Thompson 22|Evans 24|Walker 22|White 20|Roberts 22|Green 18|Hall 18|Wood 16|Jackson 18
Clarke 16|Patel 40|Khan 40|Lewis 16|James 14|Phillips 12|Mason 10|Mitchell 12|Rose 8|Davis 12
Rodriguez 3|Cox 8|Alexander 4|Morris 12|Ward 12|Hughes 14|Harris 14|Martin 14|Cooper 12|King 12
Moore 12|Clark 12|Lee 14|Turner 12|Hill 12|Scott 10|Edwards 14|Baker 10|Harrison 10|Young 10
Allen 10|Anderson 10|Campbell 8|Murphy 10|O'Brien 6|O'Connor 5|Kelly 8|McCarthy 4|Doyle 4
Ahmed 20|Ali 24|Hussain 22|Begum 18|Akhtar 10|Rahman 10|Islam 10|Uddin 8|Miah 8|Shah 12
Mahmood 8|Iqbal 8|Hussein 6|Mohamed 8|Abdi 6|Osman 6|Farah 4|Yusuf 4|Singh 18|Kaur 12
Sharma 6|Kumar 6|Gill 6|Sandhu 4|Chowdhury 6|Sidhu 3|Nowak 6|Kowalski 5|Wiśniewski 3
Wójcik 3|Lewandowski 3|Kamiński 2|Zielińska 2|Okafor 4|Okonkwo 3|Adeyemi 4|Adebayo 4
Mensah 3|Owusu 3|Boateng 3|Nwosu 2|Eze 2|Oyelaran 1|Campbell-Smith 2|Smith-Jones 2
Wang 3|Chen 4|Li 4|Zhang 3|Nguyen 4|Tran 2|Popescu 3|Ionescu 2|Silva 4|Santos 3|Ferreira 3
Murray 8|Reid 6|Stewart 8|Kennedy 6|Bennett 10|Gray 10|Price 10|Bell 10|Ellis 8|Shaw 8
Richardson 10|Fox 6|Marshall 8|Chapman 8|Webb 8|Griffiths 8|Lloyd 8|Barnes 8|Knight 8"""

#: Real English postcode districts: outward codes only, unit letters are generated.
DISTRICTS = """LS1 LS2 LS4 LS6 LS7 LS8 LS9 LS11 LS12 LS13 LS15 LS17 LS28 BD1 BD3 BD5 BD7 BD8 BD9
M1 M4 M8 M9 M11 M13 M14 M16 M19 M20 M21 M40 B5 B6 B8 B9 B10 B11 B12 B13 B19 B20 B21 B23 B29
E1 E2 E3 E6 E7 E8 E10 E11 E13 E15 E17 N1 N4 N7 N9 N15 N17 N18 N22 SE1 SE5 SE6 SE8 SE13 SE15
SE18 SE22 SE28 SW2 SW4 SW8 SW9 SW11 SW16 SW17 W3 W10 W12 NW1 NW2 NW6 NW10 BS1 BS2 BS3 BS4 BS5
BS6 BS7 BS13 NG1 NG2 NG3 NG5 NG7 NG8 NG9 LE1 LE2 LE3 LE4 LE5 S1 S2 S3 S5 S8 S10 S11 L4 L6 L7
L8 L11 L15 L17 NE1 NE4 NE6 NE15 SR1 HU3 HU5 CV1 CV2 CV6 OX1 OX4 CB1 CB4 NR1 NR2 PL1 PL4 EX1
EX4 PO1 PO4 SO14 SO15 BN1 BN2 YO1 YO10 DE1 DE22 ST1 ST4 WV1 WV10 WS1 WS2 PR1 BB1 BL1 OL1"""

MIDDLE = """James 20|Rose 18|Grace 16|John 12|Mae 12|Louise 10|Marie 10|Elizabeth 10|Thomas 10
Ali 8|Alexander 8|David 8|Jane 8|Lily 8|Anne 6|Edward 6|William 8|Joseph 8|Hope 6|Jo 4"""


def weighted(table: str) -> tuple[list[str], list[int]]:
    names, weights = [], []
    for item in table.replace("\n", "|").split("|"):
        name, weight = item.rsplit(" ", 1)
        names.append(name.strip())
        weights.append(int(weight))
    return names, weights


#: Forms agencies record for the same child: short names and transliterations.
VARIANTS: dict[str, list[str]] = {
    "William": ["Will", "Bill", "Billy", "Liam"], "Elizabeth": ["Liz", "Beth", "Lizzie"],
    "Alexander": ["Alex", "Xander"], "Alexandra": ["Alex", "Lexi"], "Muhammad": ["Mohammed",
    "Mohammad", "Muhammed"], "Mohammed": ["Muhammad", "Mohamed"], "Mohammad": ["Muhammad"],
    "Aisha": ["Ayesha", "Aysha"], "Ayesha": ["Aisha"], "Fatima": ["Fatimah"], "Yusuf": ["Yousuf",
    "Yusef"], "Maryam": ["Mariam"], "Zainab": ["Zaynab"], "Hussain": ["Husain", "Hussein"],
    "Thomas": ["Tom", "Tommy"], "James": ["Jim", "Jamie"], "Samuel": ["Sam"], "Benjamin": ["Ben"],
    "Joseph": ["Joe"], "Daniel": ["Dan", "Danny"], "Matthew": ["Matt"], "Michael": ["Mike"],
    "Joshua": ["Josh"], "Nicholas": ["Nick"], "Christopher": ["Chris"], "Frederick": ["Freddie",
    "Fred"], "Theodore": ["Theo", "Teddy"], "Edward": ["Ed", "Teddy", "Eddie"], "Oliver":
    ["Ollie"], "Henry": ["Harry"], "Charlotte": ["Lottie", "Charlie"], "Isabella": ["Bella",
    "Izzy"], "Abigail": ["Abbie"], "Rebecca": ["Becky"], "Jessica": ["Jess"], "Victoria":
    ["Vicky"], "Samantha": ["Sam"], "Amelia": ["Millie"], "Eleanor": ["Ellie"], "Jakub":
    ["Jacob"], "Oliwia": ["Olivia"], "Zofia": ["Sofia"], "Sophia": ["Sofia", "Sophie"],
    "Jayden": ["Jaden"], "Aiden": ["Aidan"], "Zoë": ["Zoe"], "José": ["Jose"],
}  # fmt: skip
